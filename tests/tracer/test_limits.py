"""A unit gone bad cannot drown the tracer: a well-formed flood from one unit account is set aside (kept,
counted, out of every trace) while the other units' events go on being stored, and an operator releases
or drops what was set aside. The limits themselves: edge/tracer/limits.py."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
from flood import flood
from support.collector import Collector, contents, wait_stored
from support.events import KEY, NOW, SINCE, STRIDE, T0, event_of
from support.feeder import Feeder
from support.wait import wait_until

from edge.core import facehash
from edge.tracer import intake, store, trace
from edge.tracer.limits import MAX_UNITS, Limits, Meter

DOOR = "traceon/campus/door/unit-1/events"


def held(url: str) -> dict[tuple[str, str], int]:
    """Events set aside, per unit and limit."""
    db = store.open_store(url)
    try:
        return {(f"{s}/{c}/{d}", kind): count for s, c, d, kind, count, *_ in db.held_summary()}
    finally:
        db.close()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=120)


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_a_flooding_unit_is_set_aside_and_neither_delays_the_others_nor_spoils_their_traces(tmp_path, broker, codes):
    url = str(tmp_path / "c.sqlite")
    collector = Collector(broker.port, url)
    collector.wait_for("collecting")
    unit = Feeder(tmp_path, broker.port)
    seen = event_of([codes["barack_obama/1.jpg"], codes["joe_biden/1.jpg"]], "door", 0)
    attacker = publisher(broker.port)
    try:
        unit.publish([seen])
        wait_stored(url, 1)
        # The flood of the issue: 100 events of 100 random FaceHashes at the victim's checkpoint and time,
        # then 2,000 more; then another unit's event, timed from its publish to its commit.
        flood(attacker, "traceon", ("campus", "door", "unit-9"), KEY.id, T0, 100, 100)
        flood(attacker, "traceon", ("campus", "door", "unit-9"), KEY.id, T0 + 3600, 2000, 100)
        other = event_of([codes["kit_harington/1.jpg"]], "hall", 60)
        published = time.monotonic()
        attacker.publish("traceon/campus/hall/unit-1/events", json.dumps(other), qos=1)
        wait_until(lambda: other["event_id"] in contents(url)[0], 60, "the other unit's event stored", interval=0.02)
        waited = time.monotonic() - published
        wait_until(lambda: sum(held(url).values()) >= 2100, 120, lambda: f"2,100 set aside ({held(url)})")
        started = time.monotonic()
        db = store.open_store(url)
        try:
            result = trace.run(db, [codes["barack_obama/3.jpg"]], STRIDE, SINCE, now=NOW + STRIDE)
        finally:
            db.close()
        traced = time.monotonic() - started
    finally:
        attacker.disconnect()
        attacker.loop_stop()
        unit.stop()
        said = collector.stop()
    print(f"\nthe other unit's event was stored {waited:.2f} s after its publish; the trace took {traced:.2f} s")
    assert held(url) == {("campus/door/unit-9", "persons"): 2100}
    assert sorted(contents(url)[0]) == sorted([seen["event_id"], other["event_id"]])
    assert [s.row.event_id for s in result.sightings] == [seen["event_id"]]
    (visit,) = result.visits
    assert [c.rows[0].code_text for c in visit.contacts] == [str(facehash.parse(codes["joe_biden/1.jpg"]))]
    assert result.coverage == (round(T0 * 1000), round((T0 + 60) * 1000))  # nothing held counts as stored
    lines = [line for line in said.splitlines() if line.startswith("set aside")]
    assert lines and len(lines) < 50, "one line per unit now and then, not one per event"
    assert "campus/door/unit-9" in lines[0] and "100 persons, more than the 30" in lines[0]
    assert "stored 2, already stored 0, refused 0, set aside 2100" in said
    listing = cli("held", "--db", url)
    assert listing.returncode == 0
    assert "campus/door/unit-9" in listing.stdout and "2,100" in listing.stdout and "210,000" in listing.stdout


def test_cadence_and_daily_quota_set_aside_the_excess_which_an_operator_releases_or_drops(tmp_path, broker, codes):
    url = str(tmp_path / "c.sqlite")
    midnight = (T0 // 86400 + 1) * 86400  # a day boundary after T0, a day or more ago
    limits = ["--unit-rows-per-day", "80"]
    collector = Collector(broker.port, url, "collector-1", *limits)
    collector.wait_for("collecting")
    unit = Feeder(tmp_path, broker.port)
    code = [codes["barack_obama/1.jpg"]]
    at_once = [event_of(code, "door", midnight - 3600 - T0) for _ in range(65)]  # more than a unit makes at once
    spaced = [event_of(code, "door", midnight + 3600 + 120 * i - T0) for i in range(100)]  # 100 rows on one day
    try:
        unit.publish(at_once + spaced)
        unit.wait_delivered(165)
        wait_until(lambda: sum(held(url).values()) >= 5 + 20, 60, lambda: f"25 set aside ({held(url)})")
        wait_stored(url, 60 + 80)
    finally:
        unit.stop()
        said = collector.stop()
    assert held(url) == {("campus/door/unit-1", "cadence"): 5, ("campus/door/unit-1", "quota"): 20}
    assert len(contents(url)[0]) == 140
    assert "set aside 25" in said

    # A restarted collector reads the day's rows back from the store: the quota still holds.
    collector = Collector(broker.port, url, "collector-1", *limits)
    collector.wait_for("collecting")
    unit = Feeder(tmp_path, broker.port)
    try:
        unit.publish([event_of(code, "door", midnight + 7200 - T0)])
        wait_until(lambda: sum(held(url).values()) >= 26, 60, lambda: f"26 set aside ({held(url)})")
    finally:
        unit.stop()
        collector.stop()

    # An operator releases the unit's cadence excess (checked again, stored) and drops the rest.
    db = store.open_store(url)
    try:
        cadence = [h.id for h in db.held(("campus", "door", "unit-1")) if h.kind == "cadence"]
    finally:
        db.close()
    released = cli("held", "release", "--db", url, "--id", *map(str, cadence))
    assert released.returncode == 0, released.stderr
    assert "released 5 held event(s): 5 stored" in released.stdout
    assert len(contents(url)[0]) == 145
    unclear = cli("held", "drop", "--db", url)
    assert unclear.returncode != 0 and "--unit SITE/CHECKPOINT/DEVICE or --id N" in unclear.stderr
    dropped = cli("held", "drop", "--db", url, "--unit", "campus/door/unit-1")
    assert dropped.returncode == 0 and "dropped 21 held event(s)" in dropped.stdout
    assert held(url) == {}
    assert "no event is held" in cli("held", "--db", url).stdout


def test_one_units_set_aside_events_are_capped_so_that_its_flood_cannot_fill_the_disk(tmp_path, broker):
    url = str(tmp_path / "c.sqlite")
    collector = Collector(broker.port, url, "collector-1", "--unit-held-mb", "1")
    collector.wait_for("collecting")
    attacker = publisher(broker.port)
    try:
        sent = flood(attacker, "traceon", ("campus", "door", "unit-9"), KEY.id, T0, 100, 100)
        collector.wait_for("#100 from it")  # past the cap, each drop is told
    finally:
        attacker.disconnect()
        attacker.loop_stop()
        said = collector.stop()
    db = store.open_store(url)
    try:
        kept = db.held_bytes(("campus", "door", "unit-9"))
        (count,) = held(url).values()
    finally:
        db.close()
    assert kept <= 2**20 < sent and 0 < count < 100
    assert f"set aside {count}, dropped {100 - count} over the set-aside cap" in said
    assert "dropped (its 1 MB of set-aside events are full) an event from campus/door/unit-9" in said


def test_the_limits_remember_a_bounded_number_of_units():
    meter = Meter(Limits())
    body = {"started_at": "2026-01-01T00:00:00.000Z", "persons": []}
    for i in range(MAX_UNITS + 500):
        assert meter.quick(("campus", "door", f"unit-{i}"), body) is None
        meter.over_quota(("campus", "door", f"unit-{i}"), 0, 1, lambda unit, day: 0)
    assert len(meter.buckets) == MAX_UNITS and len(meter.rows) == MAX_UNITS
    assert ("campus", "door", f"unit-{MAX_UNITS + 499}") in meter.buckets  # the newest stay
    assert ("campus", "door", "unit-0") not in meter.buckets


def test_a_store_of_schema_2_moves_its_events_from_the_future_aside_when_upgraded(tmp_path, codes):
    url = str(tmp_path / "v2.sqlite")
    db = store.open_store(url)
    try:
        good = event_of([codes["barack_obama/1.jpg"]], "door", 0)
        future = dict(event_of([codes["joe_biden/1.jpg"]], "door", 0), started_at="9999-12-31T00:00:00.000Z")
        future["ended_at"] = "9999-12-31T00:00:01.000Z"
        far = round(datetime.datetime(9999, 12, 31, 12, tzinfo=datetime.UTC).timestamp() * 1000)
        with db.transaction():
            for body in (good, future):  # as a collector before time sanity stored them
                db.insert(intake.build(body, now_ms=far), received_ms=round(T0 * 1000))
            db.execute("DROP TABLE held")
            db.set_meta("schema_version", "2")
    finally:
        db.close()
    db = store.open_store(url, create=False)  # a trace reads schema 2 as it is
    try:
        assert db.meta("schema_version") == "2"
        assert db.coverage()[1] > round(T0 * 1000) + 86_400_000
    finally:
        db.close()
    upgraded = cli("upgrade-db", "--db", url)
    assert upgraded.returncode == 0, upgraded.stderr
    db = store.open_store(url, create=False)
    try:
        assert db.coverage() == (round(T0 * 1000), round(T0 * 1000))
        (moved,) = db.held()
        assert moved.kind == "time" and json.loads(moved.payload)["event_id"] == future["event_id"]
    finally:
        db.close()
