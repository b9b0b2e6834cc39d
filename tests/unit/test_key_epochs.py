"""Key epochs on the unit (issue 22, Must show 1 and 2): real daemon processes on clocks the test drives
(support.clocked_unit), each holding its own copy of one key chain, as installed.

1. Two units driven across three epoch boundaries: every event of both in one epoch carries that epoch's key
   id (the one the test computes from the chain), each epoch a new one, and after a unit has moved on, the old
   key is nowhere in its folder (chain file, outbox, health file), neither as hex nor as raw bytes.
2. A unit booted without a clock: its events get the file's key; a sync into an epoch two later moves its
   file forward to that epoch's key and re-keys the events still waiting (re-stamped into that epoch); a clock
   set back a day then moves nothing.
"""

from __future__ import annotations

import json
import sqlite3
import time

from support.clocked_unit import ClockedUnit
from support.daemon import pending_ids
from support.unit_config import faces_folder
from support.wait import wait_until

from edge.core import events, keychain

HOUR = 3600.0


def today() -> float:
    """The start of today's epoch of a daily chain (UTC midnight)."""
    return keychain.ORIGIN + 86_400 * ((time.time() - keychain.ORIGIN) // 86_400)


def stored(outbox) -> dict[str, dict]:
    """The events waiting in a unit's outbox, by id, as they are stored (read-only: the daemon runs on)."""
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5) as db:
        return {i: json.loads(body) for i, body in db.execute("SELECT event_id, body FROM events ORDER BY seq")}


def epoch_of(chain: keychain.Chain, event: dict) -> int:
    return chain.epoch_of(events.parse_utc(event["started_at"]).timestamp())


def files_holding(folder, key) -> list[str]:
    """Every file under `folder` holding `key`'s bytes, raw or as hex (either case)."""
    secret = key.secret
    needles = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    return [str(p) for p in sorted(folder.rglob("*")) if p.is_file() and any(n in p.read_bytes() for n in needles)]


def bursts(units: list[ClockedUnit], n: int, timeout: float = 120) -> None:
    """`n` more events from each unit, asked for one at a time (each burst is one event)."""
    for unit in units:
        had = len(unit.events())
        for i in range(n):
            unit.burst()
            wait_until(lambda u=unit, want=had + i + 1: len(u.events()) >= want, timeout, f"{unit.device}'s event")


def test_two_units_from_one_chain_agree_on_each_epochs_key_and_forget_the_last(tmp_path, broker):
    outside = tmp_path / "test"
    outside.mkdir()
    images = faces_folder(outside)
    first = today()
    made = keychain.write_new(outside / "deployment.chain", "1d", first + 6 * HOUR)  # keygen, once
    e0 = made.epoch
    units = [
        ClockedUnit(tmp_path / f"unit{n}", outside, f"d{n}", broker.port, outside / "deployment.chain", images)
        for n in (1, 2)
    ]
    table = []
    try:
        for unit in units:
            unit.start(first + 6 * HOUR, synchronized=True)
        wait_until(lambda: all(u.running() for u in units), 120, "both units running")
        for step in range(4):
            epoch = e0 + step
            if step:  # a few seconds past the boundary: the first burst of the new epoch moves each file
                for unit in units:
                    unit.set_clock(made.start_of(epoch).timestamp() + 5)
            before = [len(u.events()) for u in units]
            bursts(units, 3)
            key, name = made.key_at(epoch), made.name(epoch)  # what the test computes from the chain keygen made
            for unit, had in zip(units, before, strict=True):
                new = unit.events()[had:]
                assert {epoch_of(made, e) for e in new} == {epoch}, new
                assert {e["key_id"] for e in new} == {key.id}
                assert {p["facehash"].split(":")[1] for e in new for p in e["persons"]} <= {key.id}
                assert unit.chain().epoch == epoch and unit.chain().key.id == key.id
                wait_until(
                    lambda u=unit, name=name: (u.health() or {}).get("key_epoch") == name,
                    30,
                    lambda u=unit, name=name: f"its health to say {name} ({u.health()})",
                )
                if step:
                    gone = made.key_at(epoch - 1)
                    assert files_holding(unit.folder, gone) == [], f"{unit.device} still holds {gone.id}"
            counts = [len(u.events()) - had for u, had in zip(units, before, strict=True)]
            table.append((name, key.id, *counts))
    finally:
        for unit in units:
            assert unit.stop() == 0
    all_ids = [row[1] for row in table]
    assert len(set(all_ids)) == 4  # each epoch a new key
    for unit in units:  # none of the keys it has left behind is anywhere in its folder, once it has stopped
        for epoch in range(e0, e0 + 3):
            assert files_holding(unit.folder, made.key_at(epoch)) == []
    print("\nepoch        key id     events d1  events d2")
    for name, key_id, one, two in table:
        print(f"{name:<12} {key_id}   {one:>9}  {two:>9}")


def test_a_unit_booted_without_a_clock_catches_up_on_sync_and_never_goes_back(tmp_path, broker):
    outside = tmp_path / "test"
    outside.mkdir()
    images = faces_folder(outside)
    first = today()
    made = keychain.write_new(outside / "deployment.chain", "1d", first + 6 * HOUR)
    e = made.epoch
    unit = ClockedUnit(tmp_path / "unit", outside, "d1", broker.port, outside / "deployment.chain", images, hold=600)
    rows, held_keys, before_sync = [], {}, {}
    try:
        unit.start(first + 6 * HOUR, synchronized=False)  # the time fake-hwclock saved: not to be trusted
        wait_until(unit.running, 120, "the unit running")
        for n in range(3):  # held in the outbox for the clock, hashed with the file's key (epoch e)
            if n == 2:
                unit.set_clock(first - 3 * 86_400, synchronized=False)  # a clock far behind: still the file's key
            unit.burst()  # one at a time: a trigger during a burst is coalesced into it
            wait_until(lambda n=n: len(pending_ids(unit.outbox)) > n, 120, f"event {n + 1} held for the clock")
        assert unit.events() == [] and unit.chain().epoch == e
        before_sync = stored(unit.outbox)
        held_keys = {i: e["key_id"] for i, e in before_sync.items()}
        assert set(held_keys.values()) == {made.key.id}  # the file's key, whatever the clock said
        assert {epoch_of(made, e) for e in before_sync.values()} == {e, e - 3}
        unit.set_clock(made.start_of(e + 2).timestamp() + HOUR)  # synchronised: two epochs later
        wait_until(lambda: len(unit.events()) >= 3, 120, "the held events re-stamped and sent")
        assert unit.chain().epoch == e + 2
        bursts([unit], 2)
        unit.set_clock(made.start_of(e + 1).timestamp() + HOUR)  # set back a day: nothing moves back
        bursts([unit], 2)
        health = unit.health()
    finally:
        assert unit.stop() == 0
    after = unit.chain()
    assert after.epoch == e + 2 and after.key.id == made.key_at(e + 2).id
    assert health["key_epoch"] == made.name(e + 2) and health["epoch_length"] == "1d"
    log = unit.log.read_text()
    assert "re-stamped 3 waiting event(s), 3 of them re-keyed" in log
    assert log.count("the FaceHash key moved forward") == 1  # once, two steps; never back
    keys = {made.key_at(n).id: n for n in range(e, e + 3)}
    for event in unit.events():
        stamped = epoch_of(made, event)
        rows.append((event, stamped, keys.get(event["key_id"])))
    held, synced, back = rows[:3], rows[3:5], rows[5:]
    assert [r[0]["event_id"] for r in held] == list(held_keys)  # the held ones first, in order
    assert all(r[0]["clock"] == "restamped" and r[1] == e + 2 and r[2] == e + 2 for r in held)
    assert all(r[0]["clock"] == "synchronized" and r[1] == e + 2 and r[2] == e + 2 for r in synced)
    assert all(r[0]["clock"] == "synchronized" and r[1] == e + 1 and r[2] == e + 2 for r in back)  # never back
    assert files_holding(unit.folder, made.key) == [] and files_holding(unit.folder, made.key_at(e + 1)) == []
    print(f"\nfile's epoch at boot: {made.name(e)} (key {made.key.id})")
    print("event     held: clock     stamped in   key id    | sent: clock   stamped in   key id    key of")
    for event, stamped, key_epoch in rows:
        was = before_sync.get(event["event_id"])
        then = (
            f"{was['clock']:<14}  {made.name(epoch_of(made, was)):<11}  {was['key_id']}"
            if was
            else f"{'(made after the sync)':<37}"
        )
        print(
            f"{event['event_id'][:8]}  {then}  | {event['clock']:<12}  {made.name(stamped):<11}  "
            f"{event['key_id']}  {made.name(key_epoch)}"
        )
