"""The store's coverage (both engines): gaps open and close at the reports that say so, each checkpoint's
state now, a checkpoint's history per bucket, retention, a trace scoped to sites, and a schema 3 store
read by a trace as it is and upgraded by a collector in one transaction."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from support.rows import MINUTE, NOW, NOW_MS, code_text, event, flipped, random_codes

from edge.tracer import intake, report, store, trace, unit_reports
from edge.tracer.store import Gap, UnitReport

STRIDE, SINCE = trace.datetime.timedelta(minutes=30), trace.datetime.timedelta(days=14)
DOOR, GATE = ("campus", "door", "unit-1"), ("campus", "gate", "unit-2")
T = NOW_MS - 10 * 60 * MINUTE


def status(unit, minutes: int, state: str) -> UnitReport:
    at = T + minutes * MINUTE
    return UnitReport(unit, "status", at, at, state=state)


def health(unit, minutes: int, camera: str = "ok", clock: str = "synchronized") -> UnitReport:
    at = T + minutes * MINUTE
    return UnitReport(unit, "health", at, at, camera=camera, clock=clock)


def test_gaps_open_at_the_report_that_says_so_and_close_at_the_next_that_says_otherwise(db):
    db.add(
        [],
        [],
        [
            status(DOOR, 0, "online"),
            status(DOOR, 10, "offline"),
            status(DOOR, 15, "offline"),  # no transition: not stored, not a second period
            status(DOOR, 40, "online"),
            health(DOOR, 1),
            health(DOOR, 20, camera="failing"),
            health(DOOR, 25, camera="failing", clock="unsynchronized"),
            health(DOOR, 50),
            status(GATE, 30, "offline"),
        ],
    )
    assert db.execute("SELECT COUNT(*) FROM statuses").fetchone()[0] == 4
    m = lambda minutes: T + minutes * MINUTE  # noqa: E731
    assert db.gaps(m(-60), m(60)) == [
        Gap("campus", "door", "unit-1", "offline", m(10), m(40)),
        Gap("campus", "door", "unit-1", "camera", m(20), m(50)),
        Gap("campus", "door", "unit-1", "clock", m(25), m(50)),
        Gap("campus", "gate", "unit-2", "offline", m(30), None),
    ]
    # a window inside a period sees it (opened before it), one after a closed period does not
    assert [(g.kind, g.from_ms) for g in db.gaps(m(12), m(14))] == [("offline", m(10))]
    assert [g.checkpoint for g in db.gaps(m(55), m(60))] == ["gate"]
    assert db.gaps(m(-60), m(60), sites=frozenset({"elsewhere"})) == []
    assert [g.kind for g in db.gaps(m(-60), m(60), place=("campus", "gate"))] == ["offline"]


def test_checkpoints_say_each_ones_state_now_and_last_event(db):
    db.add([event([bytes(128)], T + 5 * MINUTE, checkpoint="door")], [], [])
    db.add([], [], [status(DOOR, 0, "online"), health(DOOR, 1, camera="failing"), status(GATE, 30, "offline")])
    db.add([], [], [health(GATE, 31, clock="unknown")])
    door, gate = db.checkpoints()
    assert door == store.Checkpoint(
        "campus", "door", ("unit-1",), T + 5 * MINUTE, "online", T, "failing", "synchronized"
    )
    assert (gate.state, gate.state_since_ms, gate.camera, gate.clock, gate.last_event_ms) == (
        "offline",
        T + 30 * MINUTE,
        "ok",
        "unknown",
        None,
    )
    assert db.checkpoints(frozenset({"other"})) == []


def test_activity_counts_events_persons_faces_and_unsynchronised_clocks_per_bucket(db):
    rng = np.random.default_rng(4)
    made = [event(random_codes(rng, 3), T + 1 * MINUTE), event(random_codes(rng, 1), T + 2 * MINUTE)]
    late = event(random_codes(rng, 2), T + 70 * MINUTE)
    body = dict(late.body, clock="unsynchronized")
    made.append(intake.build(body, now_ms=NOW_MS))
    made.append(event(random_codes(rng, 5), T + 70 * MINUTE, checkpoint="elsewhere"))
    db.add(made)
    buckets = db.activity("campus", "library", T, T + 180 * MINUTE, 60 * MINUTE)
    assert [(b.start_ms - T, b.events, b.persons, b.faces, b.unsynced) for b in buckets] == [
        (0, 2, 4, 4, 0),
        (60 * MINUTE, 1, 2, 2, 1),
        (120 * MINUTE, 0, 0, 0, 0),
    ]
    with pytest.raises(ValueError, match="at most"):
        db.activity("campus", "library", 0, NOW_MS, 1000)


def test_retention_deletes_old_reports_but_each_units_newest(db):
    db.add([], [], [status(DOOR, 0, "online"), status(DOOR, 10, "offline"), status(GATE, 0, "offline")])
    db.add([], [], [health(DOOR, 0), health(DOOR, 5, camera="failing")])
    db.forget_before(T + 20 * MINUTE)
    assert db.execute("SELECT device, state FROM statuses ORDER BY device").fetchall() == [
        ("unit-1", "offline"),
        ("unit-2", "offline"),
    ]
    assert db.execute("SELECT camera FROM health").fetchall() == [("failing",)]
    db.forget_before(T + 5 * MINUTE)  # nothing older left
    assert db.execute("SELECT COUNT(*) FROM statuses").fetchone()[0] == 2


def test_a_trace_scoped_to_sites_searches_counts_and_reports_only_there(db):
    rng = np.random.default_rng(8)
    query, friend = random_codes(rng, 2)
    at = NOW_MS - 3 * 60 * MINUTE
    here = event([flipped(query, 10, rng), flipped(friend, 20, rng)], at)
    there = intake.build(dict(here.body, site="north", event_id=str(uuid.uuid4())), now_ms=NOW_MS)
    db.add([here, there, *[event(random_codes(rng, 1), at + i * 1000) for i in range(1, 6)]])
    db.add([], [], [UnitReport(("north", "library", "unit-1"), "status", at, at, state="offline")])
    if db.kind == "sqlite":
        db.maintain()
    everywhere = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    campus = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW, sites=frozenset({"campus"}))
    nowhere = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW, sites=frozenset())
    assert {s.row.site for s in everywhere.sightings} == {"campus", "north"} and len(everywhere.gaps) == 1
    assert {s.row.site for s in campus.sightings} == {"campus"} and campus.gaps == []
    assert everywhere.point.rows == 9 and campus.point.rows == 7 and nowhere.point.rows == 0
    assert all(r.site == "campus" for v in campus.visits for c in v.contacts for r in c.rows)
    assert "Coverage at campus:" in report.table(campus)


@pytest.fixture
def schema3(db_url):
    """A store as schema 3 left it: no statuses or health, no faces column, version 3."""
    db = store.open_store(db_url)
    db.add([event([bytes(128)], T, checkpoint="door")])
    with db.transaction():
        for table in ("statuses", "health"):
            db.execute(f"DROP TABLE {table}")
        db.execute("DROP INDEX events_place_time")
        db.execute("ALTER TABLE events DROP COLUMN faces")
        db.set_meta("schema_version", "3")
    db.close()
    return db_url


def test_a_schema_3_store_reads_as_it_is_and_upgrades_in_one_transaction(schema3):
    reader = store.open_store(schema3, read_only=True)
    try:
        assert reader.gaps(0, NOW_MS) == [] and [c.checkpoint for c in reader.checkpoints()] == ["door"]
        assert [b.faces for b in reader.activity("campus", "door", T, T + MINUTE, MINUTE)] == [1]
        assert "faces" not in reader.columns("events")
    finally:
        reader.close()
    db = store.open_store(schema3, upgrade=True)
    try:
        assert db.meta("schema_version") == str(store.SCHEMA_VERSION) and {"statuses", "health"} <= db.tables()
        assert db.execute("SELECT faces FROM events").fetchall() == [(1,)]
    finally:
        db.close()


def test_a_unit_flipping_faster_than_its_pace_ends_in_its_last_state():
    pacer = unit_reports.Pacer()
    first = UnitReport(DOOR, "status", 0, 0, state="online")
    assert pacer.status(first) == first
    assert pacer.status(UnitReport(DOOR, "status", 1000, 1000, state="offline")) is None  # waits its turn
    assert pacer.due(5000) == []
    [late] = pacer.due(unit_reports.STATUS_EVERY_MS)
    assert (late.state, late.at_ms) == ("offline", 1000)
    pacer.status(UnitReport(DOOR, "status", 11_000, 11_000, state="online"))
    pacer.status(UnitReport(DOOR, "status", 12_000, 12_000, state="offline"))  # back where it was stored
    assert pacer.due(60_000) == []
    assert pacer.health_turn(DOOR, 0) and not pacer.health_turn(DOOR, unit_reports.HEALTH_EVERY_MS - 1)
    assert pacer.health_turn(DOOR, unit_reports.HEALTH_EVERY_MS)
