"""The unit under faults: a broker that dies, SIGKILLs, a full disk, a damaged or deleted outbox, a stop
while the broker is down. Each scenario counts events committed (the daemon's own log line, written after
the commit), delivered, delivered twice (same id) and lost; lost must be 0 wherever the disk kept them.

Everything runs on loopback; the full disk is a small tmpfs, which needs root (else those skip, saying so).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from conftest import Broker, Subscriber, free_port, make_certificates, tls_listener, wait_until
from test_daemon import faces_folder, pending_ids, write_config

from edge.core import events
from edge.core.topics import Topics
from edge.unit import config
from edge.unit.outbox import Outbox
from edge.unit.uplink import BrokerLink

COMMITTED = re.compile(r"event ([0-9a-f-]{36}) committed")
RESULTS: list[tuple] = []  # (scenario, committed, delivered, twice, lost, note): printed at the end


def record(scenario: str, committed: set[str], received: list[str], note: str = "") -> int:
    counts = Counter(received)
    lost = len(committed - set(counts))
    twice = sum(1 for n in counts.values() if n > 1)
    RESULTS.append((scenario, len(committed), len(set(counts) & committed), twice, lost, note))
    print(f"\n| {scenario} | {len(committed)} | {len(set(counts) & committed)} | {twice} | {lost} | {note} |")
    return lost


class Daemon:
    """`traceon-edge run` as a process, its log in a file; what it committed, read from that log."""

    def __init__(self, path: Path, log: Path):
        self.path, self.log = path, log
        self.process = None
        self.start()

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(self.path)],
                                            stderr=out, stdout=subprocess.DEVNULL)  # fmt: skip

    def committed(self) -> set[str]:
        return set(COMMITTED.findall(self.log.read_text())) if self.log.exists() else set()

    def said(self, text: str, times: int = 1) -> bool:
        return self.log.exists() and self.log.read_text().count(text) >= times

    def wait_for(self, condition, timeout: float = 60) -> bool:
        return wait_until(condition, timeout)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def unit_config(tmp_path: Path, port: int, outbox: Path | None = None, interval: float = 0.5) -> Path:
    path = write_config(
        tmp_path, port, f"{{kind: interval, seconds: {interval}}}",
        f"{{kind: images, path: {faces_folder(tmp_path)}, loop: true}}",
        burst="{frames: 1, duration: 0.05, cooldown: 0}", upsample=0,
    )  # fmt: skip
    if outbox is not None:
        path.write_text(path.read_text().replace(str(tmp_path / "outbox.sqlite"), str(outbox)))
    return path


def received(subscriber: Subscriber) -> list[str]:
    return [e["event_id"] for e in subscriber.events()]


def latest_health(subscriber: Subscriber) -> dict:
    reports = [json.loads(p) for t, p, _ in subscriber.messages if t.endswith("/health")]
    return reports[-1] if reports else {}


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (root only): a disk that can be filled."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, which only root can mount")
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], check=True)
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the filler's path (delete it to free the disk)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 1):
            try:
                while f.write(b"\0" * size):
                    pass
            except OSError:
                pass
    return filler


# --- delivery: the unit's own outbox and broker link ------------------------------------------------------


def test_the_broker_killed_and_restarted_five_times_during_500_events_loses_none(tmp_path, broker):
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "fault-tracer")
    outbox = Outbox(tmp_path / "outbox.sqlite", 100_000, 10**9)
    acked: list[dict] = []
    link = BrokerLink(config.Mqtt(host="127.0.0.1", port=broker.port, keepalive=5, health_every=3600),
                      Topics("traceon", "s1", "door", "d1"), outbox, dict, lambda: None, acked.append)  # fmt: skip
    link.start()
    made = [sample_event(n) for n in range(500)]

    def produce():
        for event in made:
            outbox.put(event)
            time.sleep(0.02)

    # the tracer's session must be in the broker's snapshot before the first kill, and back on the broker
    # before the next one: a broker killed while holding events for a tracer not yet reconnected loses what
    # arrived since its last snapshot (mosquitto saves every second here). That is the broker's loss,
    # not the unit's; this test is about the unit.
    subscribed_at = time.time()
    snapshot = broker.conf.parent / "mosquitto.db"
    assert wait_until(lambda: snapshot.exists() and snapshot.stat().st_mtime > subscribed_at + 0.1, 10)
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    rng = random.Random(11)
    try:
        for _ in range(5):
            time.sleep(rng.uniform(0.8, 1.6))
            broker.process.send_signal(signal.SIGKILL)
            broker.process.wait(10)
            time.sleep(rng.uniform(0.2, 1.0))
            broker.start()
            assert wait_until(subscriber.client.is_connected, 10)
        producer.join(60)
        arrived = subscriber.wait_for(lambda s: set(received(s)) >= {e["event_id"] for e in made}, 60)
        missing = {e["event_id"] for e in made} - set(received(subscriber))
        assert arrived, (
            f"{len(missing)} never reached the tracer, {len(missing & {e['event_id'] for e in acked})} "
            f"of them acknowledged by the broker; {outbox.depth()} still in the outbox"
        )
    finally:
        link.stop()
        outbox.close()
        subscriber.close()
    assert record("broker SIGKILLed and restarted 5×, 500 events", {e["event_id"] for e in made},
                  received(subscriber), "the unit's outbox and broker link") == 0  # fmt: skip


def test_acknowledgements_of_other_messages_during_a_publish_never_stall_delivery(tmp_path, broker):
    """paho reports a PUBACK holding its own lock; the link must never hold its lock around a paho call, or
    the `online` status (or any other message) acknowledged while an event is published deadlocks both."""
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "ack-tracer")
    outbox = Outbox(tmp_path / "outbox.sqlite", 100_000, 10**9)
    link = BrokerLink(config.Mqtt(host="127.0.0.1", port=broker.port, keepalive=5, health_every=3600),
                      Topics("traceon", "s1", "door", "d1"), outbox, dict, lambda: None)  # fmt: skip
    made = [sample_event(n) for n in range(800)]
    for event in made:
        outbox.put(event)
    done = threading.Event()

    def other_messages():  # what the network thread does at each connect, as often as it can
        while not done.is_set():
            info = link.client.publish("traceon/s1/door/d1/status", "online", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # not connected yet
                info.wait_for_publish(1)

    noise = threading.Thread(target=other_messages, daemon=True)
    link.start()
    noise.start()
    try:
        delivered = subscriber.wait_for(lambda s: len(set(received(s))) >= len(made), 60)
    finally:
        done.set()
        noise.join(10)
        stopper = threading.Thread(target=link.stop, daemon=True)
        stopper.start()
        stopper.join(20)
        subscriber.close()
    assert not noise.is_alive() and not stopper.is_alive(), "the broker link deadlocked"
    assert delivered, f"delivery stalled after {len(set(received(subscriber)))} of {len(made)} events"


@pytest.mark.parametrize("why", ["nothing listens", "its certificate is from another CA"])
def test_a_broker_that_cannot_be_reached_is_said_at_once_then_not_at_every_retry(tmp_path, caplog, why):
    caplog.set_level(logging.ERROR, "edge.unit.uplink")
    settings = config.Mqtt(host="127.0.0.1", port=free_port(), keepalive=5)
    server = None
    if why != "nothing listens":
        make_certificates(tmp_path)
        port, lines = tls_listener(tmp_path, require_certificate=False)
        server = Broker(tmp_path, extra=lines)
        server.start()
        (tmp_path / "other").mkdir()
        make_certificates(tmp_path / "other")
        settings = config.Mqtt(host="localhost", port=port, keepalive=5, tls={"ca_file": tmp_path / "other" / "ca.crt"})
    outbox = Outbox(tmp_path / "outbox.sqlite", 100, 10**6)
    link = BrokerLink(settings, Topics("traceon", "s1", "door", "d1"), outbox, dict, lambda: None)
    link.start()
    said = lambda: [r.getMessage() for r in caplog.records if "cannot reach the broker" in r.getMessage()]  # noqa: E731
    try:
        deadline = time.monotonic() + 10
        while not said() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(4)  # paho retries after 1 s, 2 s, ...: none of those may say it again
    finally:
        link.stop()
        outbox.close()
        if server:
            server.stop()
    print(f"\n{why}: {len(said())} line(s) in the first seconds: {said()[:1]}")
    assert len(said()) == 1
    assert ("certificate verify failed" in said()[0]) == (why != "nothing listens")


def sample_event(n: int) -> dict:
    return {"schema_version": 2, "event_id": str(uuid.uuid4()), "site": "s1", "checkpoint": "door", "device": "d1",
            "trigger": "interval", "started_at": events.utc(1.8e9 + n), "ended_at": events.utc(1.8e9 + n + 0.5),
            "clock": "synchronized", "frames": 1, "faces": 0, "persons": [],
            "model": "dlib_resnet_v1_int8@b5208826d4c0", "key_id": "aaaaaaaa",
            "software": "traceon-edge 0.1.0"}  # fmt: skip


def test_sigkill_at_random_moments_loses_nothing_committed(tmp_path, broker):
    """The daemon is SIGKILLed N times (TRACEON_KILLS, default 20); what it committed comes from its own log."""
    kills = int(os.environ.get("TRACEON_KILLS", "20"))
    path = unit_config(tmp_path, broker.port, interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "tracer-kill")
    unit = Daemon(path, tmp_path / "daemon.log")
    rng = random.Random(20261123)
    pending_at_kill = []
    try:
        for n in range(kills):
            assert unit.wait_for(lambda n=n: unit.said("running:", n + 1), 60)
            time.sleep(rng.uniform(0.5, 2.5))
            if rng.random() < 0.5:  # a stalled broker: events sit committed but unacknowledged when the kill comes
                broker.pause()
                time.sleep(rng.uniform(0.0, 0.6))
            pending_at_kill.append(len(pending_ids(tmp_path / "outbox.sqlite")))
            unit.kill()
            broker.resume()
            with open(unit.log, "a") as log:
                log.write("-- killed --\n")
            unit.start()
        assert unit.wait_for(lambda: unit.said("running:", kills + 1), 60)
        assert unit.wait_for(lambda: unit.committed() <= set(received(subscriber)), 90)
        assert unit.stop() == 0
    finally:
        if unit.process.poll() is None:
            unit.kill()
        subscriber.close()
    committed = unit.committed()
    assert committed
    note = f"{sum(1 for p in pending_at_kill if p)} of {kills} kills with events waiting"
    assert record(f"daemon SIGKILLed {kills}× at random moments", committed, received(subscriber), note) == 0


def test_a_stop_while_the_broker_is_down_keeps_every_committed_event(tmp_path, broker):
    path = unit_config(tmp_path, broker.port, interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "tracer-stop")
    broker.stop()
    unit = Daemon(path, tmp_path / "daemon.log")
    assert unit.wait_for(lambda: len(unit.committed()) >= 5, 60)
    assert unit.stop() == 0  # SIGTERM with the broker down: the events must stay in the outbox
    committed = unit.committed()
    kept = set(pending_ids(tmp_path / "outbox.sqlite"))
    assert committed <= kept, f"deleted without a PUBACK: {committed - kept}"
    broker.start()
    unit = Daemon(path, tmp_path / "daemon.log")
    try:
        assert subscriber.wait_for(lambda s: committed <= set(received(s)), 60)
    finally:
        unit.stop()
        subscriber.close()
    assert record("SIGTERM while the broker is down, then restart", committed, received(subscriber)) == 0


def test_a_sigterm_during_a_burst_finishes_it_and_delivers_its_event_before_exiting(tmp_path, broker):
    path = write_config(tmp_path, broker.port, "{kind: manual}", f"{{kind: images, path: {faces_folder(tmp_path)}, "
                        "loop: true}", burst="{frames: 8, duration: 2.0, cooldown: 0}", upsample=0)  # fmt: skip
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "tracer-burst")
    unit = Daemon(path, tmp_path / "daemon.log")
    try:
        assert unit.wait_for(lambda: unit.said("running: "), 60)
        unit.process.send_signal(signal.SIGUSR1)  # a burst of 2 s begins
        time.sleep(0.5)  # the stop comes in the middle of it
        assert unit.committed() == set()
        assert unit.stop() == 0
    finally:
        subscriber.wait_for(lambda s: received(s), 10)
        subscriber.close()
    committed = unit.committed()
    assert len(committed) == 1, "the burst under way was not finished"
    assert set(received(subscriber)) == committed, "its event was left for the next start"
    assert pending_ids(tmp_path / "outbox.sqlite") == []


def test_a_trigger_larger_than_a_trigger_needs_never_reaches_the_unit(tmp_path, broker):
    """The unit tells the broker its largest packet (MQTT 5): the broker drops the rest for it."""
    fired: list[float] = []
    outbox = Outbox(tmp_path / "outbox.sqlite", 100, 10**6)
    link = BrokerLink(config.Mqtt(host="127.0.0.1", port=broker.port, keepalive=5, health_every=3600),
                      Topics("traceon", "s1", "door", "d1"), outbox, dict, lambda: fired.append(1))  # fmt: skip
    link.start()
    sender = Subscriber(broker.port, "traceon/s1/door/d1/status", "trigger-sender")
    try:
        assert link.connected.wait(10) and wait_until(lambda: sender.messages, 10)
        sender.client.publish("traceon/s1/door/d1/cmd/trigger", b"x" * 200_000, qos=1).wait_for_publish(5)
        sender.client.publish("traceon/s1/door/d1/cmd/trigger", b"", qos=1).wait_for_publish(5)
        assert wait_until(lambda: fired, 10)
        time.sleep(0.5)  # had the large one come, it came first
        still = link.connected.is_set()
    finally:
        link.stop()
        outbox.close()
        sender.close()
    assert fired == [1] and still


# --- the disk ---------------------------------------------------------------------------------------------


def test_a_full_disk_then_freed_loses_nothing(tmp_path, broker, small_disk):
    """The broker is down and the disk fills: new events wait in memory; freed, they reach the disk and the broker."""
    path = unit_config(tmp_path, broker.port, outbox=small_disk / "state" / "outbox.sqlite", interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/#", "tracer-full")
    broker.stop()
    unit = Daemon(path, tmp_path / "daemon.log")
    try:
        assert unit.wait_for(lambda: len(unit.committed()) >= 3, 60)
        filler = fill(small_disk)
        full_since = len(unit.committed())
        assert unit.wait_for(lambda: unit.said("is full:"), 30), "the full disk was never said"
        assert unit.wait_for(lambda: len(unit.committed()) >= full_since + 10, 60)  # made while full
        filler.unlink()
        assert unit.wait_for(lambda: unit.said("has room again"), 30)
        broker.start()
        assert subscriber.wait_for(lambda s: unit.committed() <= set(received(s)), 90)
    finally:
        unit.stop()
        subscriber.close()
    assert record("outbox disk full (broker down), then freed", unit.committed(), received(subscriber),
                  "events made while full waited in memory") == 0  # fmt: skip


def test_the_broker_up_while_the_disk_is_full_delivers_each_event_once(tmp_path, broker, small_disk):
    path = unit_config(tmp_path, broker.port, outbox=small_disk / "state" / "outbox.sqlite", interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/#", "tracer-full-up")
    unit = Daemon(path, tmp_path / "daemon.log")
    try:
        assert subscriber.wait_for(lambda s: len(s.events()) >= 3, 60)
        fill(small_disk)
        before = len(unit.committed())
        assert unit.wait_for(lambda: len(unit.committed()) >= before + 15, 60)
        assert subscriber.wait_for(lambda s: unit.committed() <= set(received(s)), 60)
        problem = latest_health(subscriber).get("outbox", {}).get("problem", "")
    finally:
        unit.stop()
        subscriber.close()
    assert "full" in problem or "cannot remove" in problem, problem
    assert record("broker up while the outbox disk is full", unit.committed(), received(subscriber),
                  f"health said: {problem[:70]}…") == 0  # fmt: skip


def damage(outbox: Path, header: bool) -> None:
    """Overwrite the outbox's 100-byte header, or the start of its last two pages (where the newest events
    are; the header and the older events stay readable), with garbage, as a bad card might."""
    with sqlite3.connect(outbox) as db:  # everything in the main file first, nothing left in the WAL
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(outbox.read_bytes())
    if header:
        data[:100] = os.urandom(100)
    else:
        for page in range(len(data) // 4096 - 2, len(data) // 4096):
            data[page * 4096 : page * 4096 + 64] = os.urandom(64)
    outbox.write_bytes(bytes(data))


@pytest.mark.parametrize("header", [False, True], ids=["damaged pages", "damaged header"])
def test_a_damaged_outbox_is_moved_aside_counted_and_the_unit_goes_on(tmp_path, broker, header):
    path = unit_config(tmp_path, broker.port, interval=0.5)
    outbox = tmp_path / "outbox.sqlite"
    subscriber = Subscriber(broker.port, "traceon/+/+/+/#", "tracer-damage")
    broker.stop()
    unit = Daemon(path, tmp_path / "daemon.log")
    assert unit.wait_for(lambda: len(pending_ids(outbox)) >= 30, 90)
    assert unit.stop() == 0
    waiting = pending_ids(outbox)
    damage(outbox, header)
    broker.start()
    unit = Daemon(path, tmp_path / "daemon.log")
    try:
        assert unit.wait_for(lambda: unit.said("was damaged"), 60), "the damage was never said"
        after = len(unit.committed())
        assert unit.wait_for(lambda: len(unit.committed()) >= after + 3, 60)  # it goes on making events
        new = unit.committed() - set(waiting)
        assert subscriber.wait_for(lambda s: new <= set(received(s)), 60)
        assert subscriber.wait_for(lambda s: latest_health(s).get("outbox", {}).get("faults"), 30)
        health = latest_health(subscriber)
    finally:
        assert unit.stop() == 0
        subscriber.close()
    fault = health["outbox"]["faults"][-1]
    line = next(line for line in unit.log.read_text().splitlines() if "was damaged" in line)
    assert fault["kind"] == "damaged" and Path(fault["moved_to"]).exists()
    arrived = set(received(subscriber))
    lost = len(set(waiting) - arrived)
    assert fault["carried_over"] == len(set(waiting) & arrived)
    assert fault["lost"] is None  # found at start: the damaged file cannot say how many it held
    assert lost == len(waiting) - fault["carried_over"]
    record(f"outbox with {'a damaged header' if header else 'damaged pages'} (found at start)",
           set(waiting) | new, list(arrived), f"health: carried over {fault['carried_over']}, lost unknown; "
           f"log: {line.split(': ', 1)[-1][:80]}…")  # fmt: skip


def test_the_outbox_folder_deleted_while_running_is_made_again_with_every_waiting_event(tmp_path, broker):
    state = tmp_path / "state"
    path = unit_config(tmp_path, broker.port, outbox=state / "outbox.sqlite", interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/#", "tracer-deleted")
    broker.stop()
    unit = Daemon(path, tmp_path / "daemon.log")
    try:
        assert unit.wait_for(lambda: len(unit.committed()) >= 5, 60)
        import shutil

        shutil.rmtree(state)
        assert unit.wait_for(lambda: unit.said("was deleted while running"), 30)
        assert unit.wait_for(lambda: (state / "outbox.sqlite").exists(), 10)
        broker.start()
        assert subscriber.wait_for(lambda s: unit.committed() <= set(received(s)), 60)
        assert subscriber.wait_for(lambda s: latest_health(s).get("outbox", {}).get("faults"), 30)
        fault = latest_health(subscriber)["outbox"]["faults"][-1]
    finally:
        unit.stop()
        subscriber.close()
    assert fault["kind"] == "deleted" and fault["lost"] == 0
    assert record("outbox folder deleted while running (broker down)", unit.committed(), received(subscriber),
                  f"made again with {fault['carried_over']} waiting") == 0  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def print_the_table():
    """The table of this run's scenarios, after the last one (run with -s to see it)."""
    yield
    print("\n| scenario | committed | delivered | delivered twice | lost | note |\n|---|---|---|---|---|---|")
    for row in RESULTS:
        print("| " + " | ".join(map(str, row)) + " |")
