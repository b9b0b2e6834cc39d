"""The trace page through the app (TestClient) over a real SQLite store: the audit row is written before the result
is shown, the search keeps to the user's sites, exports are audited, and bad input gets the form back with a reason
and leaves no audit row behind."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient
from support.console import console_setup, form_token, random_person, sign_in, store_events

from edge.console import audit
from edge.console.app import build_app
from edge.core import facehash


@pytest.fixture
def world(tmp_path):
    rng = np.random.default_rng(7)
    person, other = random_person(rng), random_person(rng)
    path = str(tmp_path / "sightings.db")
    store_events(
        path,
        [
            ("north", "door", 0, [person, other]),
            ("north", "door", 120, [person]),
            ("south", "gate", 7200, [person]),
        ],
    )
    return console_setup(tmp_path, path), person, other


def client_of(setup, name: str, app=None) -> TestClient:
    """A browser of its own, signed in as `name`, to a new console or to `app` (to share its kept traces)."""
    app = app or build_app(setup.settings)
    client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    assert sign_in(client, name).status_code == 303
    return client


def traced(client, **fields):
    token = form_token(client.get("/trace").text)
    form = {"csrf": token, "case_id": "C-7", "reason": "tested positive", "since": "14d", "stride": "30m"} | fields
    return client.post("/trace", data=form)


def audit_rows(setup, action: str) -> list:
    db = setup.db()
    try:
        return audit.entries(db, action=action)
    finally:
        db.close()


def test_a_trace_is_audited_with_its_case_fingerprint_and_counts_and_then_shown(world):
    setup, person, _ = world
    tess = client_of(setup, "tess")
    answer = traced(tess, facehashes=person)
    assert answer.status_code == 200
    assert "north/door" in answer.text and "south/gate" in answer.text
    [row] = audit_rows(setup, "trace")
    assert row.user == "tess" and row.detail["case_id"] == "C-7" and row.detail["reason"] == "tested positive"
    assert row.detail["query"] == audit.fingerprint(setup.key, [person])
    assert row.detail["hits"] == 3 and row.detail["rows_searched"] >= 4
    assert person not in str(row.detail)  # the fingerprint, never the FaceHash


def test_a_user_scoped_to_a_site_traces_only_there(world):
    setup, person, _ = world
    answer = traced(client_of(setup, "scoped"), facehashes=person)
    assert answer.status_code == 200
    assert "north/door" in answer.text and "south/gate" not in answer.text
    assert audit_rows(setup, "trace")[0].detail["sites"] == ["north"]


def test_exports_are_audited_and_only_the_sessions_own(world):
    setup, person, _ = world
    tess = client_of(setup, "tess")
    traced(tess, facehashes=person)
    csv = tess.get("/trace/1/export.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert csv.text.startswith("kind,") and "north" in csv.text
    assert tess.get("/trace/1/export.json").json()["sightings"]
    assert [e.detail["format"] for e in audit_rows(setup, "export")] == ["json", "csv"]
    another_tracer = client_of(setup, "tess", tess.app)  # the same person in another session of the same console
    assert another_tracer.get("/trace/1/export.csv").status_code == 404


@pytest.mark.parametrize(
    "fields, said",
    [
        ({"case_id": ""}, "the case id is required"),
        ({"reason": "   "}, "the reason"),
        ({"case_id": "C" * 300}, "at most 200"),
        ({"case_id": "C-1\r\nInjected: yes"}, "control character"),
        ({"since": "forever"}, "is not a duration"),
        ({"stride": "2d"}, "at most 1 day"),
        ({"facehashes": ""}, "Paste one or more FaceHashes"),
        ({"facehashes": "not-a-facehash"}, ""),
        ({"facehashes": "' OR 1=1; DROP TABLE audit; --"}, ""),
    ],
)
def test_bad_input_returns_the_form_with_a_reason_and_leaves_no_audit_row(world, fields, said):
    setup, person, _ = world
    answer = traced(client_of(setup, "tess"), **({"facehashes": person} | fields))
    assert answer.status_code == 400
    assert 'id="why"' in answer.text and said in answer.text
    assert "Traceback" not in answer.text
    assert 'name="reason"' in answer.text  # the form again, with what was typed
    assert audit_rows(setup, "trace") == []


def test_a_facehash_of_another_key_says_so(world):
    setup, _, _ = world
    stranger = facehash.Key(b"another deployment's key........")
    code = str(facehash.from_packed(stranger.id, bytes(128), 1024))
    answer = traced(client_of(setup, "tess"), facehashes=code)
    assert answer.status_code == 400 and "different keys cannot be linked" in answer.text


def test_a_window_with_no_rows_is_a_report_that_says_so(world):
    setup, person, _ = world
    answer = traced(client_of(setup, "tess"), facehashes=person, since="1m")
    assert answer.status_code == 200
    assert audit_rows(setup, "trace")[0].detail["hits"] == 0


def test_another_sessions_csrf_token_is_refused(world):
    setup, person, _ = world
    tess = client_of(setup, "tess")
    other = client_of(setup, "scoped", tess.app)
    their_token = form_token(other.get("/trace").text)
    answer = tess.post("/trace", data={"csrf": their_token, "facehashes": person, "case_id": "C", "reason": "r"})
    assert answer.status_code == 403
    assert audit_rows(setup, "trace") == []


def test_a_database_that_is_down_is_a_page_that_says_so(world, tmp_path):
    setup, person, _ = world
    tess = client_of(setup, "tess")
    token = form_token(tess.get("/trace").text)
    (tmp_path / "sightings.db").rename(tmp_path / "moved.db")
    answer = tess.post("/trace", data={"csrf": token, "facehashes": person, "case_id": "C", "reason": "r"})
    assert answer.status_code == 503
    assert "The database is down" in answer.text and "Nothing was done" in answer.text
