"""The checkpoint pages, through the app over a real store: state, last event, events per day and offline periods;
one checkpoint's events per hour as a server-drawn SVG with its gaps shaded; never a FaceHash; scoped by site."""

from __future__ import annotations

import re

import numpy as np
import pytest
from starlette.testclient import TestClient
from support.console import console_setup, random_person, sign_in, store_events, store_statuses
from support.events import T0

from edge.console.app import build_app
from edge.core.spans import when


@pytest.fixture
def world(tmp_path):
    rng = np.random.default_rng(3)
    person, other = random_person(rng), random_person(rng)
    path = str(tmp_path / "sightings.db")
    store_events(
        path,
        [
            ("north", "door", 0, [person, other]),
            ("north", "door", 3600, [person]),
            ("south", "gate", 60, [other]),
        ],
    )
    store_statuses(path, [("north", "door", -60, "online"), ("north", "door", 600, "offline"),
                          ("north", "door", 1800, "online")])  # fmt: skip
    return console_setup(tmp_path, path), [person, other]


def client_of(setup, name: str) -> TestClient:
    client = TestClient(build_app(setup.settings), base_url="http://127.0.0.1", raise_server_exceptions=False)
    assert sign_in(client, name).status_code == 303
    return client


def test_the_checkpoints_page_lists_state_last_event_days_and_offline_periods(world):
    setup, codes = world
    page = client_of(setup, "vera").get("/checkpoints")
    assert page.status_code == 200
    assert "north/door" in page.text and "south/gate" in page.text
    assert when(round(T0 * 1000) + 3600_000) in page.text  # north/door's last event
    assert when(round(T0 * 1000) + 600_000, "%m-%d %H:%M") in page.text  # its offline period this week
    assert not any(c in page.text for c in codes)


def test_a_checkpoint_history_draws_hours_and_shades_the_offline_period(world):
    setup, codes = world
    since = when(round(T0 * 1000) - 3600_000, "%Y-%m-%d %H:%M")
    until = when(round(T0 * 1000) + 4 * 3600_000, "%Y-%m-%d %H:%M")
    page = client_of(setup, "vera").get("/checkpoints/north/door", params={"since": since, "until": until})
    assert page.status_code == 200
    assert len(re.findall(r'<rect class="bar"', page.text)) == 5  # one bar per hour of the period
    assert 'class="gap gap-offline"' in page.text
    assert re.search(r'id="events">2<', page.text) and re.search(r'id="persons">3<', page.text)
    assert "style=" not in page.text and "<script>" not in page.text
    assert not any(c in page.text for c in codes)


@pytest.mark.parametrize(
    "query, said",
    [
        ({"since": "40d"}, "at most 31 days"),
        ({"since": "1h; DROP TABLE events"}, "give a span"),
        ({"until": "2030-13-45"}, "give a span"),
        ({"since": "2h", "until": "1970-01-01"}, ""),
    ],
)
def test_a_bad_period_is_a_page_that_says_why(world, query, said):
    setup, _ = world
    answer = client_of(setup, "vera").get("/checkpoints/north/door", params=query)
    assert answer.status_code in (200, 400)
    assert said in answer.text and "Traceback" not in answer.text


def test_a_site_outside_the_users_scope_is_neither_listed_nor_shown(world):
    setup, _ = world
    lookout = client_of(setup, "lookout")
    assert "south/gate" not in lookout.get("/checkpoints").text
    assert lookout.get("/checkpoints/south/gate").status_code == 403
    assert lookout.get("/checkpoints/north/nowhere").status_code == 404


def test_a_hostile_name_in_the_url_is_not_echoed(world):
    setup, _ = world
    answer = client_of(setup, "vera").get("/checkpoints/%3Cscript%3Ealert(1)%3C%2Fscript%3E/x")
    assert answer.status_code == 404
    assert "<script>alert" not in answer.text
