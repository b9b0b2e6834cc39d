"""The durable outbox: order, persistence across reopening, bounds and their counted policy."""

from __future__ import annotations

import uuid

from edge.outbox import Outbox


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
