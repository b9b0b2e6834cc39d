"""Benchmark of a unit gone bad (it prints numbers; it asserts nothing): the flood of issue 19 against a real
mosquitto and a real collector, on the code in --code (default: this checkout; give an older checkout to
measure "before").

    python tools/bench_flood.py [--code DIR] [--flood 2000] [--persons 100]

1. Unit campus/door/unit-1 sends one event: the traced person and one contact.
2. Unit campus/door/unit-9 sends 100 events of --persons random FaceHashes at the same checkpoint and time;
   `traceon-edge trace` of the person then runs (wall time, contacts listed).
3. Unit-9 sends --flood more such events an hour later, then unit campus/hall/unit-2 sends one event: the
   time from that publish until the collector has committed it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from flood import flood, junk_event
from servers import ROOT, Broker

KEY_ID = "aaaaaaaa"


def stored(db: Path, event_id: str) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            return c.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone() is not None
    except sqlite3.Error:
        return False


def wait(condition, timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            return float("inf")
        time.sleep(0.01)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose collector and trace run")
    parser.add_argument("--flood", type=int, default=2000)
    parser.add_argument("--persons", type=int, default=100)
    parser.add_argument("--trace-timeout", type=float, default=600)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(args.code.resolve()))
    rng, now = random.Random(1), time.time() - 3 * 3600
    seen = junk_event(("campus", "door", "unit-1"), KEY_ID, now, 2, rng)
    person = seen["persons"][0]["facehash"]
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        broker.start()
        db = Path(tmp) / "flood.sqlite"
        command = [sys.executable, "-m", "edge.cli", "collect", "--broker", f"127.0.0.1:{broker.port}"]
        collector = subprocess.Popen([*command, "--db", str(db)], env=env, cwd=args.code, stderr=subprocess.DEVNULL)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            time.sleep(2)  # the collector subscribes (its session then keeps what comes)
            client.publish("traceon/campus/door/unit-1/events", json.dumps(seen), qos=1).wait_for_publish(10)
            wait(lambda: stored(db, seen["event_id"]), 60)
            started = time.monotonic()
            flood(client, "traceon", ("campus", "door", "unit-9"), KEY_ID, now, 100, args.persons)
            last = junk_event(("campus", "door", "unit-9"), KEY_ID, now, 1, rng)
            client.publish("traceon/campus/door/unit-9/events", json.dumps(last), qos=1).wait_for_publish(10)
            took = time.monotonic() - started + wait(lambda: stored(db, last["event_id"]), 600)
            print(f"100 events of {args.persons} persons from unit-9, handled in {took:.1f} s")
            trace = [sys.executable, "-m", "edge.cli", "trace", person, "--db", str(db), "--format", "json"]
            started = time.monotonic()
            try:
                done = subprocess.run(
                    trace, env=env, cwd=args.code, capture_output=True, text=True, timeout=args.trace_timeout
                )
                result = json.loads(done.stdout)
                contacts = sum(
                    v.get("contacts_total", len(v["contacts"])) for v in result["visits"]
                )  # older: all listed
                shown = sum(len(v["contacts"]) for v in result["visits"])
                print(
                    f"trace of the person: {time.monotonic() - started:.2f} s, {contacts:,} contact(s) "
                    f"({shown:,} listed) over {result['operating_point']['rows_searched']:,} rows searched"
                )
            except subprocess.TimeoutExpired:
                print(f"trace of the person: stopped after {args.trace_timeout:.0f} s")
            started = time.monotonic()
            flood(client, "traceon", ("campus", "door", "unit-9"), KEY_ID, now + 3600, args.flood, args.persons)
            sent = time.monotonic() - started
            other = junk_event(("campus", "hall", "unit-2"), KEY_ID, now + 3600, 1, rng)
            client.publish("traceon/campus/hall/unit-2/events", json.dumps(other), qos=1).wait_for_publish(10)
            waited = wait(lambda: stored(db, other["event_id"]), 600)
            print(
                f"{args.flood:,} more events from unit-9 published in {sent:.1f} s; unit-2's event sent after them "
                f"was stored {waited:.2f} s after its publish"
            )
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                events, persons = (c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("events", "persons"))
                tables = {name for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                held = c.execute("SELECT COUNT(*) FROM held").fetchone()[0] if "held" in tables else 0
            print(f"stored {events:,} events, {persons:,} person rows; set aside {held:,} events")
            print(f"store size {db.stat().st_size / 2**20:,.0f} MB (+ WAL)")
        finally:
            client.disconnect()
            client.loop_stop()
            collector.terminate()
            collector.wait(60)
            broker.stop()


if __name__ == "__main__":
    main()
