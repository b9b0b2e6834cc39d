"""Contact tracing from stored sightings: collect (idempotent), trace (Hamming match, stride), refusals."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest
from conftest import need_data
from test_daemon import InThread, photos_on_demand

from edge import events, facehash, sightings
from edge.facehash import FaceHasher, Key
from edge.persons import group
from edge.vision.media import read_image

KEY = Key(b"contact tracing test key........")
T0 = datetime.datetime(2026, 11, 20, 9, 0, tzinfo=datetime.UTC).timestamp()


@pytest.fixture(scope="module")
def hasher():
    return FaceHasher(KEY, facehash.load_scheme())


def sighting(pipeline, hasher, checkpoint: str, minutes: float, photos: list[str]) -> dict:
    """One event from a real photo burst: the listed photos, one frame each, at T0 + minutes."""
    frames = [pipeline.process(read_image(need_data("faces", *p.split("/")))) for p in photos]
    identity = events.Identity("campus", checkpoint, "unit-1", pipeline.files.model_id)
    at = T0 + 60 * minutes
    return events.build(identity, "pir", at, at + 1, len(frames), group(frames, pipeline.threshold), hasher)


@pytest.fixture(scope="module")
def day(pipeline, hasher):
    return [
        sighting(pipeline, hasher, "library", 0, ["barack_obama/1.jpg", "joe_biden/1.jpg"]),
        sighting(pipeline, hasher, "library", 120, ["rose_leslie/1.jpg"]),  # two hours later: outside the stride
        sighting(pipeline, hasher, "canteen", 10, ["kit_harington/1.jpg"]),  # before Obama arrives there
        sighting(pipeline, hasher, "canteen", 25, ["barack_obama/2.jpg"]),
        sighting(pipeline, hasher, "canteen", 300, ["john_lennon/1.jpg"]),
    ]


def test_trace_lists_sightings_and_the_people_met_within_the_stride(tmp_path, pipeline, hasher, day):
    db = sightings.open_store(str(tmp_path / "sightings.sqlite"))
    for event in day:
        assert sightings.store(db, event)
    assert not sightings.store(db, day[0])  # a retried event is stored once
    probe = str(hasher.hash(pipeline.process(read_image(need_data("faces", "barack_obama", "3.jpg")))[0].embedding))
    now = datetime.datetime.fromtimestamp(T0, datetime.UTC) + datetime.timedelta(days=1)
    rows = sightings.trace(db, probe, datetime.timedelta(minutes=30), datetime.timedelta(days=14), now)
    kinds = sorted((r.kind, r.checkpoint) for r in rows)
    assert kinds == [("contact", "canteen"), ("contact", "library"), ("sighting", "canteen"), ("sighting", "library")]
    contacts = {r.facehash for r in rows if r.kind == "contact"}
    assert day[2]["persons"][0]["facehash"] in contacts  # Kit, 15 minutes before Obama at the canteen
    assert day[1]["persons"][0]["facehash"] not in contacts  # Rose, two hours later
    assert day[4]["persons"][0]["facehash"] not in contacts  # Lennon, five hours later
    assert all(r.distance <= hasher.threshold for r in rows if r.kind == "sighting")
    library_contact = next(r for r in rows if r.kind == "contact" and r.checkpoint == "library")
    assert library_contact.facehash in {p["facehash"] for p in day[0]["persons"]} and library_contact.gap_s == 0


def test_a_facehash_of_another_key_is_refused_clearly(tmp_path, pipeline, day):
    db = sightings.open_store(str(tmp_path / "s.sqlite"))
    for event in day:
        sightings.store(db, event)
    other = FaceHasher(Key(b"another deployment's key........"), facehash.load_scheme())
    code = str(other.hash(pipeline.process(read_image(need_data("faces", "barack_obama", "1.jpg")))[0].embedding))
    with pytest.raises(sightings.TraceError, match=rf"made with key {other.key.id}, but the database holds .*{KEY.id}"):
        sightings.trace(db, code, datetime.timedelta(minutes=30), datetime.timedelta(days=3650))
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "trace", code, "--db", str(tmp_path / "s.sqlite")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "cannot be linked" in result.stderr


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish each (topic, payload) at QoS 1 and wait until the broker has it, as a unit would."""
    sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sender.connect("127.0.0.1", port)
    sender.loop_start()
    for topic, payload in messages:
        sender.publish(topic, payload, qos=1).wait_for_publish(5)
    sender.disconnect()
    sender.loop_stop()


def numbered(day: list[dict], count: int = 20) -> list[dict]:
    """`count` distinct events (ids numbered) cycling through the day's real ones."""
    return [dict(day[n % len(day)], event_id=f"00000000-0000-4000-8000-{n:012d}") for n in range(count)]


def test_collect_stores_each_event_once_and_refuses_what_is_not_an_event(tmp_path, broker, day):
    db_path = tmp_path / "collected.sqlite"
    collector = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "collect", "--broker", f"127.0.0.1:{broker.port}", "--db", str(db_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "collecting" in collector.stderr.readline()
        payloads = [json.dumps(e).encode() for e in [*day, day[0]]] + [b'{"face": "jpeg bytes"}']
        publish(broker.port, [("traceon/campus/x/unit-1/events", p) for p in payloads])
        time.sleep(1)
    finally:
        collector.send_signal(signal.SIGTERM)
        _, err = collector.communicate(timeout=20)
    assert "stored 5, already stored 1, refused 1" in err
    db = sightings.open_store(str(db_path))
    assert db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 5


def test_two_collectors_in_a_shared_subscription_split_the_events_without_overlap(tmp_path, broker, day):
    command = [
        sys.executable,
        "-m",
        "edge.cli",
        "collect",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--share",
        "tracers",
    ]
    collectors = [
        subprocess.Popen([*command, "--db", str(tmp_path / f"c{i}.sqlite")], stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    try:
        for c in collectors:
            assert "collecting $share/tracers/" in c.stderr.readline()
        events_ = numbered(day)
        sent = [e["event_id"] for e in events_]
        publish(broker.port, [("traceon/campus/x/unit-1/events", json.dumps(e).encode()) for e in events_])
        time.sleep(1.5)
    finally:
        for c in collectors:
            c.send_signal(signal.SIGTERM)
            c.communicate(timeout=20)
    stored = [
        {
            row[0]
            for row in sightings.open_store(str(tmp_path / f"c{i}.sqlite")).execute("SELECT event_id FROM sightings")
        }
        for i in range(2)
    ]
    assert stored[0] | stored[1] == set(sent)
    assert not stored[0] & stored[1]
    assert stored[0] and stored[1]  # both took a share


def stored(url: str) -> tuple[list, list]:
    db = sightings.open_store(url)
    try:
        events_ = db.execute("SELECT * FROM sightings ORDER BY event_id").fetchall()
        persons = db.execute("SELECT * FROM persons ORDER BY event_id, position").fetchall()
        return [tuple(r) for r in events_], [tuple(r) for r in persons]
    finally:
        db.close()


def test_sqlite_and_postgresql_store_the_same_events_from_one_replay(tmp_path, broker, postgres):
    urls = {"sqlite": str(tmp_path / "collected.sqlite"), "postgresql": postgres}
    command = [sys.executable, "-m", "edge.cli", "collect", "--broker", f"127.0.0.1:{broker.port}", "--db"]
    collectors = {
        kind: subprocess.Popen([*command, url], stderr=subprocess.PIPE, text=True) for kind, url in urls.items()
    }
    unit = None
    try:
        for c in collectors.values():
            assert "collecting" in c.stderr.readline()
        unit = InThread(photos_on_demand(tmp_path, broker.port, "{frames: 3, duration: 0.1, cooldown: 0}"))
        for _ in range(4):  # four bursts of the two real photos, replayed
            time.sleep(1.5)
            unit.daemon.inbox.fire("manual")
        deadline = time.monotonic() + 60
        while len(unit.delivered) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        # a unit's redelivery of an event already stored
        publish(broker.port, [("traceon/s1/door/d1/events", json.dumps(unit.delivered[0]).encode())])
        time.sleep(1.5)
    finally:
        if unit:
            unit.stop()
        for c in collectors.values():
            c.send_signal(signal.SIGTERM)
        said = {kind: c.communicate(timeout=20)[1] for kind, c in collectors.items()}
    delivered = len(unit.delivered)
    assert delivered >= 4
    for kind in urls:
        assert f"stored {delivered}, already stored 1, refused 0" in said[kind], said[kind]
    rows = {kind: stored(url) for kind, url in urls.items()}
    assert rows["sqlite"] == rows["postgresql"]
    sighted, persons = rows["sqlite"]
    assert sorted(json.loads(r[-1])["event_id"] for r in sighted) == sorted(e["event_id"] for e in unit.delivered)
    assert len(persons) == sum(len(e["persons"]) for e in unit.delivered) > 0
    print(f"\n{len(sighted)} events and {len(persons)} person rows, identical in SQLite and PostgreSQL")
    code = unit.delivered[0]["persons"][0]["facehash"]
    reports = [
        subprocess.run(
            [sys.executable, "-m", "edge.cli", "trace", code, "--db", url, "--format", "json"],
            capture_output=True, text=True, check=True,
        ).stdout
        for url in urls.values()
    ]  # fmt: skip
    assert reports[0] == reports[1] and json.loads(reports[0])


def test_two_collectors_sharing_the_load_into_one_postgresql_database_store_each_event_once(broker, postgres, day):
    command = [sys.executable, "-m", "edge.cli", "collect", "--broker", f"127.0.0.1:{broker.port}"]
    command += ["--share", "tracers", "--db", postgres]
    collectors = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for c in collectors:
            assert "collecting $share/tracers/" in c.stderr.readline()
        publish(broker.port, [("traceon/campus/x/unit-1/events", json.dumps(e).encode()) for e in numbered(day)])
        time.sleep(1.5)
    finally:
        for c in collectors:
            c.send_signal(signal.SIGTERM)
    said = [c.communicate(timeout=20)[1] for c in collectors]
    counts = [int(s.split("stored ")[1].split(",")[0]) for s in said]
    assert sum(counts) == 20 and min(counts) > 0, said  # each took a share, nobody saw an event twice
    assert all("already stored 0" in s for s in said)
    assert len(stored(postgres)[0]) == 20
    print(f"\nshared into one PostgreSQL database: {counts[0]} + {counts[1]} = 20 events")
