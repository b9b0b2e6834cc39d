"""The access matrix: every route × every role (and signed out, and users scoped to site north), as a table this
test generates and compares with tests/console/access_matrix.md, so that any cell that changes fails here.

ok: the page or the action was served; login: sent to /login; 403: refused (role, site scope or CSRF);
404: nothing of theirs there (another session's trace is not theirs).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient
from support.console import console_setup, form_token, random_person, sign_in, store_events

from edge.console import notices
from edge.console.app import build_app

EXPECTED = Path(__file__).with_name("access_matrix.md")
ROLES = {
    "signed out": None,
    "admin": "ada",
    "tracer": "tess",
    "auditor": "otto",
    "viewer": "vera",
    "tracer of north": "scoped",
    "viewer of north": "lookout",
}


@pytest.fixture
def world(tmp_path):
    rng = np.random.default_rng(20)
    person, other = random_person(rng), random_person(rng)
    path = str(tmp_path / "sightings.db")
    store_events(
        path,
        [
            ("north", "door", 0, [person, other]),
            ("north", "door", 60, [person]),
            ("south", "door", 7200, [person, other]),
        ],
    )
    setup = console_setup(tmp_path, path)
    return setup, person


def cell(answer) -> str:
    if answer.status_code in (302, 303):
        return "login" if answer.headers["location"] == "/login" else "ok"
    return "ok" if answer.status_code == 200 else str(answer.status_code)


def notice_at(setup, site: str) -> int:
    db = setup.db()
    try:
        with db.transaction() as tx:
            now = int(time.time() * 1000)
            return notices.publish(tx, setup.key, site, "door", now - 3_600_000, now, "setup", "test").id
    finally:
        db.close()


def row_of(setup, person: str, name: str | None) -> dict[str, str]:
    client = TestClient(build_app(setup.settings), base_url="http://127.0.0.1", raise_server_exceptions=False)
    if name:
        assert sign_in(client, name).status_code == 303
    token = form_token(client.get("/notices").text) if name else ""
    get = lambda path: cell(client.get(path, follow_redirects=False))  # noqa: E731
    post = lambda path, data: cell(client.post(path, data=data, follow_redirects=False))  # noqa: E731
    row = {
        "GET /": "ok" if name else get("/"),
        "GET /checkpoints": get("/checkpoints"),
        "GET /checkpoints/north/door": get("/checkpoints/north/door"),
        "GET /checkpoints/south/door": get("/checkpoints/south/door"),
        "GET /trace": get("/trace"),
    }
    traced = client.post(
        "/trace",
        data={"csrf": token, "facehashes": person, "case_id": "C-1", "reason": "index case", "since": "14d"},
        follow_redirects=False,
    )
    row["POST /trace"] = cell(traced)
    number = re.search(r"<h1>Trace (\d+)", traced.text)
    n = number[1] if number else "1"
    row["GET /trace/{n}"] = get(f"/trace/{n}")
    row["GET /trace/{n}/export.csv"] = get(f"/trace/{n}/export.csv")
    row["GET /trace/999/export.json (not kept)"] = get("/trace/999/export.json")
    row["POST /notices (a visit of the trace)"] = post("/notices", {"csrf": token, "trace": n, "visit": "0"})
    row["POST /notices (no CSRF token)"] = post("/notices", {"trace": n, "visit": "0"})
    row["POST /notices/{id}/withdraw (south)"] = post(f"/notices/{notice_at(setup, 'south')}/withdraw", {"csrf": token})
    row["GET /notices"] = get("/notices")
    row["GET /audit"] = get("/audit")
    row["GET /users"] = get("/users")
    row["POST /users (add)"] = post(
        "/users", {"csrf": token, "name": f"new{len(token)}x", "password": "a long enough one", "role": "viewer"}
    )
    row["POST /users/vera/password (wrong CSRF token)"] = post(
        "/users/vera/password", {"csrf": "x" + token, "password": "p" * 16}
    )
    row["GET /report.css"] = get("/report.css")
    row["GET /static/htmx.min.js"] = get("/static/htmx.min.js")
    return row


def as_table(rows: dict[str, dict[str, str]]) -> str:
    routes = list(next(iter(rows.values())))
    lines = ["| route | " + " | ".join(rows) + " |", "|---" * (len(rows) + 1) + "|"]
    lines += [f"| {r} | " + " | ".join(rows[role][r] for role in rows) + " |" for r in routes]
    return "\n".join(lines) + "\n"


def test_the_access_matrix_is_the_agreed_one(world, tmp_path):
    setup, person = world
    table = as_table({role: row_of(setup, person, name) for role, name in ROLES.items()})
    (tmp_path / "access_matrix.md").write_text(table)
    if os.environ.get("TRACEON_SHOTS"):
        Path("/work/shots").mkdir(exist_ok=True)
        Path("/work/shots/access_matrix.md").write_text(table)
    assert table == EXPECTED.read_text(), f"the access matrix changed; now:\n{table}"
