"""The unit under faults on its disk: a full disk, a damaged or deleted outbox. Each scenario counts events
committed (the daemon's own log line, written after the commit), delivered, delivered twice (same id) and lost;
lost must be 0 wherever the disk kept them. The delivery faults: test_faults_delivery.py; both print their
rows in one table at the end (support.faults, the fixture fault_table in conftest.py).

Everything runs on loopback; the full disk is a small tmpfs, which needs root (else those skip, saying so).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from support.daemon import DaemonProcess, pending_ids
from support.disk import fill
from support.faults import received, record
from support.mqtt import Subscriber
from support.unit_config import unit_config
from support.wait import wait_until

pytestmark = pytest.mark.usefixtures("fault_table")


def latest_health(subscriber: Subscriber) -> dict:
    reports = [json.loads(p) for t, p, _ in subscriber.messages if t.endswith("/health")]
    return reports[-1] if reports else {}


# --- the disk ---------------------------------------------------------------------------------------------


def test_a_full_disk_then_freed_loses_nothing(tmp_path, broker, small_disk):
    """The broker is down and the disk fills: new events wait in memory; freed, they reach the disk and the broker."""
    path = unit_config(tmp_path, broker.port, outbox=small_disk / "state" / "outbox.sqlite", interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/#", "tracer-full")
    broker.stop()
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    try:
        wait_until(lambda: len(unit.committed()) >= 3, 60, "3 events committed")
        filler = fill(small_disk)
        full_since = len(unit.committed())
        wait_until(lambda: unit.said("is full:"), 30, "the daemon to say the disk is full")
        wait_until(lambda: len(unit.committed()) >= full_since + 10, 60, "10 events made while the disk is full")
        filler.unlink()
        wait_until(lambda: unit.said("has room again"), 30, "the daemon to say the disk has room again")
        broker.start()
        subscriber.wait_for(lambda s: unit.committed() <= set(received(s)), 90, "every committed event at the tracer")
    finally:
        unit.stop()
        subscriber.close()
    assert (
        record(
            "outbox disk full (broker down), then freed",
            unit.committed(),
            received(subscriber),
            "events made while full waited in memory",
        )
        == 0
    )


def test_the_broker_up_while_the_disk_is_full_delivers_each_event_once(tmp_path, broker, small_disk):
    path = unit_config(tmp_path, broker.port, outbox=small_disk / "state" / "outbox.sqlite", interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/#", "tracer-full-up")
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    try:
        subscriber.wait_for(lambda s: len(s.events()) >= 3, 60, "3 events at the tracer")
        fill(small_disk)
        before = len(unit.committed())
        wait_until(lambda: len(unit.committed()) >= before + 15, 60, "15 events made while the disk is full")
        subscriber.wait_for(lambda s: unit.committed() <= set(received(s)), 60, "every committed event at the tracer")
        problem = latest_health(subscriber).get("outbox", {}).get("problem", "")
    finally:
        unit.stop()
        subscriber.close()
    assert "full" in problem or "cannot remove" in problem, problem
    assert (
        record(
            "broker up while the outbox disk is full",
            unit.committed(),
            received(subscriber),
            f"health said: {problem[:70]}…",
        )
        == 0
    )


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
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    wait_until(lambda: len(pending_ids(outbox)) >= 30, 90, "30 events waiting in the outbox")
    assert unit.stop() == 0
    waiting = pending_ids(outbox)
    damage(outbox, header)
    broker.start()
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    try:
        wait_until(lambda: unit.said("was damaged"), 60, "the daemon to say the outbox was damaged")
        after = len(unit.committed())
        wait_until(lambda: len(unit.committed()) >= after + 3, 60, "3 events more: it goes on making events")
        new = unit.committed() - set(waiting)
        subscriber.wait_for(lambda s: new <= set(received(s)), 60, "the new events at the tracer")
        subscriber.wait_for(lambda s: latest_health(s).get("outbox", {}).get("faults"), 30, "health to name the fault")
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
    record(
        f"outbox with {'a damaged header' if header else 'damaged pages'} (found at start)",
        set(waiting) | new,
        list(arrived),
        f"health: carried over {fault['carried_over']}, lost unknown; log: {line.split(': ', 1)[-1][:80]}…",
    )


def test_the_outbox_folder_deleted_while_running_is_made_again_with_every_waiting_event(tmp_path, broker):
    state = tmp_path / "state"
    path = unit_config(tmp_path, broker.port, outbox=state / "outbox.sqlite", interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/#", "tracer-deleted")
    broker.stop()
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    try:
        wait_until(lambda: len(unit.committed()) >= 5, 60, "5 events committed")
        import shutil

        shutil.rmtree(state)
        wait_until(lambda: unit.said("was deleted while running"), 30, "the daemon to say the outbox was deleted")
        wait_until(lambda: (state / "outbox.sqlite").exists(), 10, "the outbox made again")
        broker.start()
        subscriber.wait_for(lambda s: unit.committed() <= set(received(s)), 60, "every committed event at the tracer")
        subscriber.wait_for(lambda s: latest_health(s).get("outbox", {}).get("faults"), 30, "health to name the fault")
        fault = latest_health(subscriber)["outbox"]["faults"][-1]
    finally:
        unit.stop()
        subscriber.close()
    assert fault["kind"] == "deleted" and fault["lost"] == 0
    assert (
        record(
            "outbox folder deleted while running (broker down)",
            unit.committed(),
            received(subscriber),
            f"made again with {fault['carried_over']} waiting",
        )
        == 0
    )
