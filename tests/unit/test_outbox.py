"""The durable outbox: order, persistence across reopening, bounds and their counted policy."""

from __future__ import annotations

import uuid

from edge.unit.outbox import Outbox


def event(n: int, size: int = 0) -> dict:
    return {"event_id": str(uuid.UUID(int=n + 1, version=4)), "n": n, "pad": "x" * size}


def test_events_come_out_oldest_first_and_survive_reopening(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 100, 10**6)
    for n in range(5):
        box.put(event(n))
    box.put(event(2))  # a retry of the same event id is stored once
    assert box.depth() == 5
    box.delete(event(0)["event_id"])
    box.close()
    again = Outbox(tmp_path / "o.sqlite", 100, 10**6)
    seen = []
    while (item := again.oldest()) is not None:
        seen.append(item[0])
        again.delete(item[0])
    assert seen == [event(n)["event_id"] for n in (1, 2, 3, 4)]
    again.close()
    again.close()  # closing twice is harmless


def test_when_full_the_oldest_give_way_and_are_counted(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 10, 10**6)
    for n in range(15):
        box.put(event(n))
    assert box.depth() == 10
    assert box.dropped() == 5
    assert box.oldest()[0] == event(5)["event_id"]


def test_the_byte_bound_holds_too(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 1000, 100_000)
    for n in range(30):
        box.put(event(n, 10_000))
    assert box.depth() < 10
    assert box.dropped() == 30 - box.depth()


def test_drop_newest_keeps_what_was_there(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 10, 10**6, "drop_newest")
    for n in range(12):
        box.put(event(n))
    assert box.oldest()[0] == event(0)["event_id"]
    assert box.depth() == 10 and box.dropped() == 2


def test_a_full_outbox_says_so_once_a_minute_not_at_every_put(tmp_path, caplog):
    box = Outbox(tmp_path / "o.sqlite", 10, 10**6)
    for n in range(60):
        box.put(event(n))
    said = [r.getMessage() for r in caplog.records if "outbox full" in r.getMessage()]
    assert len(said) == 1 and "dropped 1 oldest event(s)" in said[0]
    assert box.dropped() == 50
    box.close()


def test_an_event_committed_after_the_sync_but_made_before_it_is_restamped_too(tmp_path):
    """The vision thread may still be working on a burst captured before the clock synchronised."""
    import json

    from edge.core import events

    box = Outbox(tmp_path / "o.sqlite", 100, 10**6)
    stale = {**event(0), "started_at": events.utc(1e9), "ended_at": events.utc(1e9 + 0.5), "clock": "unsynchronized"}
    box.put(stale, (100.0, "boot-1"))  # waiting when the sync comes
    assert box.restamp(wall=1.8e9, mono=110.0, boot="boot-1") == 1
    late = {**event(1), "started_at": events.utc(1e9 + 5), "ended_at": events.utc(1e9 + 5.5), "clock": "unsynchronized"}
    box.put(late, (105.0, "boot-1"))  # made at monotonic 105, committed after the re-stamp
    other_boot = {**event(2), "started_at": events.utc(1e9), "ended_at": events.utc(1e9 + 1), "clock": "unsynchronized"}
    box.put(other_boot, (1.0, "boot-0"))
    sent = []
    while (item := box.oldest()) is not None:
        sent.append(json.loads(item[1]))
        box.delete(item[0])
    assert [(e["clock"], e["started_at"], e["ended_at"]) for e in sent] == [
        ("restamped", events.utc(1.8e9 - 10), events.utc(1.8e9 - 9.5)),
        ("restamped", events.utc(1.8e9 - 5), events.utc(1.8e9 - 4.5)),
        ("unsynchronized", events.utc(1e9), events.utc(1e9 + 1)),  # another boot: its monotonic time means nothing now
    ]
    box.close()


def test_held_events_wait_for_their_restamp_not_only_for_the_clock(tmp_path):
    """The clock can turn synchronised a moment before the daemon re-stamps (it checks between bursts): in that
    moment the events it held must not slip out still marked unsynchronised."""
    import json

    from edge.core import events

    class Clock:
        boot, synced = "boot-1", False

        def synchronized(self):
            return self.synced

        def mono(self):
            return 101.0

    clock = Clock()
    box = Outbox(tmp_path / "o.sqlite", 100, 10**6)
    box.hold_unsynchronized(clock, 120)
    made = {**event(0), "started_at": events.utc(1e9), "ended_at": events.utc(1e9 + 0.5), "clock": "unsynchronized"}
    box.put(made, (100.0, "boot-1"))
    assert box.oldest() is None  # held while the clock is not synchronised
    clock.synced = True
    assert box.oldest() is None  # synchronised, not yet re-stamped
    assert box.restamp(wall=1.8e9, mono=101.0, boot="boot-1") == 1
    assert json.loads(box.oldest()[1])["clock"] == "restamped"
    box.close()
