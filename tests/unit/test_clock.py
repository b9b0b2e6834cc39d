"""Event times under a clock that jumps back and forth (a Pi booting with fake-hwclock's time, then NTP):
each event's times come from one wall reading plus the monotonic clock, so they are always in order and
as long as the burst; events are marked `unsynchronized`, and those still waiting when the clock
synchronises are re-stamped from the monotonic clock (`restamped`), close to the true time."""

from __future__ import annotations

import random
import threading
import time

from support.daemon import InThread, pending_ids
from support.mqtt import Subscriber
from support.unit_config import unit_config
from support.wait import wait_until

from edge.core import events
from edge.unit.clock import boot_id

DAY = 86_400.0


class JumpyClock:
    """The system clock as a unit may see it before NTP: every reading off by a different amount."""

    def __init__(self, seed: int):
        self.boot = boot_id()
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.synced = False

    def wall(self) -> float:
        with self.lock:
            if self.synced:
                return time.time()
            return time.time() + self.rng.choice([-3 * DAY, -DAY, -3600.0, -2.0, 0.0, 2.0, 3600.0])

    def mono(self) -> float:
        return time.monotonic()

    def synchronized(self) -> bool:
        return self.synced

    def state(self) -> tuple[bool, str]:
        return self.synced, "test"


def seconds(event: dict, field: str) -> float:
    return events.parse_utc(event[field]).timestamp()


def run_unit(tmp_path, port: int, clock: JumpyClock, extra: str = "") -> InThread:
    path = unit_config(tmp_path, port, interval=0.5)
    path.write_text(
        path.read_text().replace("burst: {frames: 1, duration: 0.05", "burst: {frames: 3, duration: 0.3") + extra
    )
    unit = InThread(path, clock=clock)
    return unit


def test_a_jumping_clock_gives_ordered_times_each_marked_unsynchronized(tmp_path, broker):
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "clock-watch")
    unit = run_unit(tmp_path, broker.port, JumpyClock(3))
    try:
        subscriber.wait_for(lambda s: len(s.events()) >= 12, 90, lambda: f"12 events ({len(subscriber.events())} came)")
    finally:
        unit.stop()
        subscriber.close()
    made = subscriber.events()
    lengths = [seconds(e, "ended_at") - seconds(e, "started_at") for e in made]
    print(
        f"\n{len(made)} events under a clock jumping by up to 3 days: length of each "
        f"{min(lengths):.2f}–{max(lengths):.2f} s, marks {sorted({e['clock'] for e in made})}"
    )
    assert {e["clock"] for e in made} == {"unsynchronized"}
    assert all(0.2 <= length < 10 for length in lengths), lengths  # never negative, never a jump long


def test_events_waiting_when_the_clock_synchronises_are_restamped_from_the_monotonic_clock(tmp_path, broker):
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "clock-watch")
    clock = JumpyClock(5)
    began = time.time()
    unit = run_unit(tmp_path, broker.port, clock, "clock: {hold_unsynchronized: 120}\n")
    try:
        wait_until(lambda: len(pending_ids(tmp_path / "outbox.sqlite")) >= 4, 60, "4 events held in the outbox")
        assert subscriber.events() == []  # held back: the clock may still be corrected
        with clock.lock:
            clock.synced = True
        subscriber.wait_for(
            lambda s: len({e["clock"] for e in s.events()}) == 2, 60, "events re-stamped and events made after the sync"
        )
    finally:
        unit.stop()
        subscriber.close()
    ended = time.time()
    made = subscriber.events()
    restamped = [e for e in made if e["clock"] == "restamped"]
    print(
        f"\n{len(restamped)} events re-stamped, {len(made) - len(restamped)} made after the sync; every time "
        f"within the test's true {ended - began:.0f} s"
    )
    assert {e["clock"] for e in made} == {"restamped", "synchronized"} and len(restamped) >= 4
    assert {(e["schema_version"], e["scheme"]) for e in made} == {(3, "fh2")}  # held and re-stamped, kept whole
    assert all(events.problem(e) is None for e in restamped)
    assert made[: len(restamped)] == restamped  # the held ones first, in order
    for event in made:
        start, end = seconds(event, "started_at"), seconds(event, "ended_at")
        assert began - 1 <= start <= end <= ended + 1, event
    starts = [seconds(e, "started_at") for e in made]
    assert starts == sorted(starts)
