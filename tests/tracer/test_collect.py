"""`traceon-edge collect` against a real mosquitto: it loses nothing and stores each event once. What it refuses
and the problems it names: test_collect_refusals.py."""

from __future__ import annotations

import random
import re
import threading
import time

from support.collector import Collector, contents, stream, wait_stored
from support.feeder import Feeder
from support.servers import Postgres
from support.wait import wait_until


def test_events_published_while_the_collector_is_down_arrive_when_it_returns(tmp_path, broker, codes, db_url):
    first = Collector(broker.port, db_url)
    first.wait_for("collecting")
    assert "stored 0" in first.stop()
    unit = Feeder(tmp_path, broker.port)
    sent = stream(codes, 50)
    try:
        unit.publish(sent)
        unit.wait_delivered(50)  # the unit has its PUBACKs and has deleted them: only the broker holds them now
    finally:
        unit.stop()
    second = Collector(broker.port, db_url)
    wait_stored(db_url, 50)
    said = second.stop()
    ids, persons = contents(db_url)
    print(f"\n{db_url.split(':')[0]}: {len(set(ids))} of 50 stored, {len(ids) - len(set(ids))} twice; {said.strip()}")
    assert sorted(ids) == sorted(e["event_id"] for e in sent) and persons == 50
    assert "stored 50, already stored 0, refused 0" in said


def test_a_collector_killed_ten_times_at_random_moments_loses_nothing_and_stores_nothing_twice(
    tmp_path, broker, codes, db_url
):
    rng = random.Random(20261123)
    sent = stream(codes, 500)
    collector = Collector(broker.port, db_url)
    collector.wait_for("collecting")
    unit = Feeder(tmp_path, broker.port)
    feeder = threading.Thread(target=unit.publish, args=(sent, 60), daemon=True)
    feeder.start()  # about 8 s of events at 60 per second
    try:
        for _ in range(10):
            time.sleep(rng.uniform(0.2, 0.9))  # the fault's random moment, not a wait: the kill lands mid-stream
            collector.kill()
            collector = Collector(broker.port, db_url)
            collector.wait_for("collecting")
        feeder.join(60)
        unit.wait_delivered(500)
        wait_stored(db_url, 500)
    finally:
        unit.stop()
        said = collector.stop()
    ids, persons = contents(db_url)
    kind, last = db_url.split(":")[0], said.strip().splitlines()[-1]
    print(
        f"\n{kind}: 10 SIGKILLs, {len(set(ids))} of 500 stored, {500 - len(set(ids))} lost, "
        f"{len(ids) - len(set(ids))} twice, {persons} person rows; last run: {last}"
    )
    assert sorted(ids) == sorted(e["event_id"] for e in sent)
    assert persons == 500


def test_an_event_is_acknowledged_only_once_it_is_stored(tmp_path, broker, codes, postgres):
    """The store is locked while events arrive; the collector, blocked in its transaction, is killed. Had it
    acknowledged anything before the commit, the broker would not send it again."""
    import psycopg

    collector = Collector(broker.port, postgres)
    collector.wait_for("collecting")
    unit = Feeder(tmp_path, broker.port)
    sent = stream(codes, 30)
    with psycopg.connect(postgres) as lock:
        lock.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        try:
            unit.publish(sent)
            unit.wait_delivered(30)
            blocked = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            wait_until(lambda: lock.execute(blocked).fetchone()[0], 30, "the collector to try to store (blocked)")
            collector.kill()
        finally:
            unit.stop()
        lock.rollback()
    again = Collector(broker.port, postgres)
    wait_stored(postgres, 30)
    said = again.stop()
    assert sorted(contents(postgres)[0]) == sorted(e["event_id"] for e in sent)
    assert "stored 30, already stored 0" in said


def test_two_collectors_in_a_share_group_one_killed_store_every_event_once(tmp_path, broker, codes, postgres):
    sent = stream(codes, 300)
    group = ["--share", "tracers"]
    steady = Collector(broker.port, postgres, "tracer-a", *group)
    flaky = Collector(broker.port, postgres, "tracer-b", *group)
    for c in (steady, flaky):
        c.wait_for("collecting $share/tracers/")
    unit = Feeder(tmp_path, broker.port)
    feeder = threading.Thread(target=unit.publish, args=(sent, 60), daemon=True)
    feeder.start()
    rng = random.Random(7)
    try:
        for _ in range(3):
            time.sleep(rng.uniform(0.5, 1.2))  # the fault's random moment, not a wait: the kill lands mid-stream
            flaky.kill()
            time.sleep(rng.uniform(0.1, 1.0))  # the outage's random length, not a wait: its share waits at the broker
            flaky = Collector(broker.port, postgres, "tracer-b", *group)
            flaky.wait_for("collecting")
        feeder.join(60)
        unit.wait_delivered(300)
        wait_stored(postgres, 300)
    finally:
        unit.stop()
        said = [c.stop() for c in (steady, flaky)]
    ids, persons = contents(postgres)
    steady_stored = int(re.search(r"^stored (\d+),", said[0], re.M).group(1))
    print(
        f"\nshare group, tracer-b killed 3 times: {len(set(ids))} of 300 stored, {len(ids) - len(set(ids))} twice; "
        f"tracer-a stored {steady_stored}"
    )
    assert sorted(ids) == sorted(e["event_id"] for e in sent) and persons == 300
    assert 0 < steady_stored < 300  # both took a share


def test_a_database_that_goes_down_loses_no_event(tmp_path, broker, codes):
    """PostgreSQL stops mid-stream: nothing is acknowledged until it is back, then every event is stored once."""
    server = Postgres()
    url = server.new_database()
    collector = Collector(broker.port, url)
    collector.wait_for("collecting")
    unit = Feeder(tmp_path, broker.port)
    sent = stream(codes, 40)
    try:
        unit.publish(sent[:20])
        wait_stored(url, 20)
        server.halt()
        unit.publish(sent[20:])
        unit.wait_delivered(40)  # the broker has them all; the collector cannot store them
        collector.wait_for("cannot store events")
        server.start()
        wait_stored(url, 40)
    finally:
        unit.stop()
        said = collector.stop()
        server.stop()
    assert "nothing is acknowledged" in said
    assert "stored 40, already stored 0, refused 0" in said


def test_three_thousand_events_at_once_are_all_stored(tmp_path, broker, codes):
    """mosquitto's default queue (1,000) drops the rest; config/mosquitto-collect.conf raises it."""
    url = str(tmp_path / "c.sqlite")
    collector = Collector(broker.port, url)
    collector.wait_for("collecting")
    unit = Feeder(tmp_path, broker.port)
    sent = stream(codes, 3000)
    try:
        unit.publish(sent)
        unit.wait_delivered(3000, timeout=120)
        wait_stored(url, 3000)
    finally:
        unit.stop()
        said = collector.stop()
    assert sorted(contents(url)[0]) == sorted(e["event_id"] for e in sent)
    assert "stored 3000, already stored 0" in said
