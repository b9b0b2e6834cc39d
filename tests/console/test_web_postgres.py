"""The console on PostgreSQL (a real server the suite starts): sign in, trace, audit row, checkpoint page; and a
server that is gone is the "database is down" page, not a traceback."""

from __future__ import annotations

import numpy as np
from starlette.testclient import TestClient
from support.console import console_setup, form_token, random_person, sign_in, store_events

from edge.console import audit
from edge.console.app import ConsoleSettings, build_app


def test_a_trace_on_postgresql_is_audited_and_shown(postgres, tmp_path):
    rng = np.random.default_rng(11)
    person, other = random_person(rng), random_person(rng)
    store_events(postgres, [("north", "door", 0, [person, other]), ("north", "door", 60, [person])])
    setup = console_setup(tmp_path, postgres)
    client = TestClient(build_app(setup.settings), base_url="http://127.0.0.1", raise_server_exceptions=False)
    assert sign_in(client, "tess").status_code == 303
    token = form_token(client.get("/trace").text)
    answer = client.post("/trace", data={"csrf": token, "facehashes": person, "case_id": "PG-1", "reason": "r"})
    assert answer.status_code == 200 and "north/door" in answer.text
    assert client.get("/checkpoints/north/door", params={"since": "7d"}).status_code == 200
    db = setup.db()
    try:
        [row] = audit.entries(db, action="trace")
    finally:
        db.close()
    assert row.detail["case_id"] == "PG-1" and row.detail["hits"] == 2


def test_a_postgresql_server_that_is_not_there_is_a_page(tmp_path):
    from servers import free_port

    url = f"postgresql://console@127.0.0.1:{free_port()}/nothing"
    settings = ConsoleSettings(db_url=url, audit_key=tmp_path / "audit.key")
    audit.AuditKey.generate(settings.audit_key)
    client = TestClient(build_app(settings), base_url="http://127.0.0.1", raise_server_exceptions=False)
    answer = client.get("/notices")
    assert answer.status_code == 503
    assert "The database is down" in answer.text and "Traceback" not in answer.text
    assert "cannot connect" in answer.text
