"""Notices from the trace page: published from a visit (place and time only), listed on the public page, retained
over MQTT on a real broker, withdrawn (audited), and still stored and listed when the broker is down."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from starlette.testclient import TestClient
from support.console import console_setup, form_token, random_person, sign_in, store_events
from support.mqtt import Subscriber

from edge.console import audit
from edge.console.app import build_app
from edge.core.broker import BrokerConfig

TOPIC = "traceon/north/door/notices"


@pytest.fixture
def traced(tmp_path, broker):
    rng = np.random.default_rng(5)
    person, other = random_person(rng), random_person(rng)
    path = str(tmp_path / "sightings.db")
    store_events(path, [("north", "door", 0, [person, other]), ("north", "door", 60, [person])])
    setup = console_setup(tmp_path, path, broker=BrokerConfig(host="127.0.0.1", port=broker.port))
    client = TestClient(build_app(setup.settings), base_url="http://127.0.0.1", raise_server_exceptions=False)
    assert sign_in(client, "tess").status_code == 303
    token = form_token(client.get("/trace").text)
    page = client.post("/trace", data={"csrf": token, "facehashes": person, "case_id": "N-1", "reason": "case"})
    assert page.status_code == 200
    return setup, client, token, person


def retained(port: int) -> dict:
    display = Subscriber(port, TOPIC, "door-display")
    try:
        display.wait_for(lambda s: s.messages, 10, f"a retained message on {TOPIC}")
        return json.loads(display.messages[-1][1])
    finally:
        display.close()


def test_a_notice_is_published_listed_retained_and_withdrawn(traced, broker):
    setup, client, token, person = traced
    answer = client.post("/notices", data={"csrf": token, "trace": "1", "visit": "0"})
    assert answer.status_code == 200 and "and sent to the checkpoint" in answer.text
    public = TestClient(client.app, base_url="http://127.0.0.1").get("/notices")
    assert "north/door" in public.text and "N-1" not in public.text and person not in public.text
    [shown] = retained(broker.port)["notices"]
    assert set(shown) >= {"from", "to"} and "N-1" not in json.dumps(shown)
    notice_id = re.search(r'action="/notices/(\d+)/withdraw"', client.get("/notices").text)[1]
    assert client.post(f"/notices/{notice_id}/withdraw", data={"csrf": token}).status_code == 200
    assert "There are no current notices" in client.get("/notices").text
    assert retained(broker.port)["notices"] == []
    db = setup.db()
    try:
        assert [e.action for e in audit.entries(db) if e.action.startswith("notice")] == ["notice-withdrawn", "notice"]
    finally:
        db.close()


def test_a_notice_stands_when_the_broker_is_down_and_the_page_says_so(traced, broker):
    _, client, token, _ = traced
    broker.stop()
    answer = client.post("/notices", data={"csrf": token, "trace": "1", "visit": "0"})
    assert answer.status_code == 200 and "the broker could not be reached" in answer.text
    assert "north/door" in client.get("/notices").text


def test_a_visit_that_is_not_in_the_trace_is_refused(traced):
    _, client, token, _ = traced
    for visit in ("7", "-99999", "x", ""):
        answer = client.post("/notices", data={"csrf": token, "trace": "1", "visit": visit})
        assert answer.status_code == 400, visit
    assert client.post("/notices", data={"csrf": token, "trace": "2", "visit": "0"}).status_code == 404
