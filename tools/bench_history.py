"""Benchmark of a checkpoint's history and coverage (it prints numbers; it asserts nothing): Store.activity,
Store.checkpoints and Store.gaps at 10^5 … 10^6 stored person rows on SQLite and PostgreSQL.

    python tools/bench_history.py [--sizes 100000,1000000] [--backends sqlite,postgresql] [--postgres URL]

Rows are loaded as tools/bench_trace.py loads them (SQLite through the store's own `add`, then sealed;
PostgreSQL by COPY of the columns the store's insert writes): four persons per event, 50 checkpoints,
times spread over 14 days, a tenth of the events of an unsynchronised clock. The codes are random (a
history never reads them). Each unit also has status and health transitions (offline and camera failing
for an hour twice a day). Timed, median of 3: one checkpoint's 14 days per hour (336 buckets) and its last
day per 5 minutes, every checkpoint's state now, and every gap over 14 days.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import servers
from bench_trace import CHECKPOINTS, KEY, PER_EVENT, Server, fill

from edge.core import events
from edge.tracer import intake, store
from edge.tracer.store import UnitReport

NOW = time.time()
DAY_MS, HOUR_MS = 86_400_000, 3_600_000


def batches(total: int, start: int, rng: np.random.Generator):
    """Events (as the store's Event) for rows start … total-1, in chunks of 100,000 rows."""
    for first in range(start, total, 100_000):
        n = min(100_000, total - first)
        packed = rng.integers(0, 256, (n, 128), dtype=np.uint8)
        made = []
        for i in range(0, n, PER_EVENT):
            at = NOW - rng.uniform(0, 14 * 86400)
            checkpoint = f"door-{int(rng.integers(CHECKPOINTS))}"
            rows = packed[i : i + PER_EVENT]
            body = {
                "schema_version": 2,
                "event_id": str(uuid.uuid4()),
                "site": "bench",
                "checkpoint": checkpoint,
                "device": "unit-1",
                "trigger": "pir",
                "started_at": events.utc(at),
                "ended_at": events.utc(at + 1),
                "clock": "unsynchronized" if rng.random() < 0.1 else "synchronized",
                "frames": 10,
                "faces": len(rows) + 1,
                "persons": [],  # the codes are the Event's; the body's persons are never read here
                "model": "dlib_resnet_v1_int8@b5208826d4c0",
                "key_id": KEY.id,
                "software": "traceon-edge 0.1.0",
            }
            at_ms = round(at * 1000)
            text = json.dumps(body, sort_keys=True, separators=(",", ":"))
            codes = tuple(bytes(r) for r in rows)
            made.append(
                intake.Event(
                    body, text, "bench", checkpoint, "unit-1", at_ms, at_ms + 1000, KEY.id, 1024, codes, body["clock"]
                )
            )
        yield made


def reports(url: str) -> None:
    """Each unit offline, and its camera failing, for an hour twice a day over the 14 days."""
    db = store.open_store(url)
    now_ms = round(NOW * 1000)
    made = []
    for c in range(CHECKPOINTS):
        unit = ("bench", f"door-{c}", "unit-1")
        for half in range(28):
            at = now_ms - 14 * DAY_MS + half * DAY_MS // 2 + c * 60_000
            made += [UnitReport(unit, "status", at, at, state="offline")]
            made += [UnitReport(unit, "health", at + 1, at + 1, camera="failing", clock="synchronized")]
            made += [UnitReport(unit, "status", at + HOUR_MS, at + HOUR_MS, state="online")]
            made += [UnitReport(unit, "health", at + HOUR_MS + 1, at + HOUR_MS + 1, camera="ok", clock="synchronized")]
    db.add([], [], made)
    db.close()


def timed(work) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(3):
        started = time.perf_counter()
        result = work()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def measure(url: str) -> dict:
    db = store.open_store(url, read_only=True)
    now_ms = round(NOW * 1000)
    try:
        fortnight, buckets = timed(lambda: db.activity("bench", "door-7", now_ms - 14 * DAY_MS, now_ms, HOUR_MS))
        day, _ = timed(lambda: db.activity("bench", "door-7", now_ms - DAY_MS, now_ms, 300_000))
        places, checkpoints = timed(lambda: db.checkpoints())
        gaps_s, gaps = timed(lambda: db.gaps(now_ms - 14 * DAY_MS, now_ms))
    finally:
        db.close()
    return {
        "activity 14 d / 1 h s": fortnight,
        "activity 1 d / 5 min s": day,
        "checkpoints s": places,
        "gaps 14 d s": gaps_s,
        "events in the 14 d": sum(b.events for b in buckets),
        "persons in the 14 d": sum(b.persons for b in buckets),
        "checkpoints": len(checkpoints),
        "gaps": len(gaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", metavar="URL", help="a running PostgreSQL server instead of a throwaway one")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    results = []
    for backend in args.backends.split(","):
        pg = None
        if backend == "postgresql":
            pg = Server(args.postgres) if args.postgres else servers.Postgres(fsync=True)
        url = pg.new_database() if pg else str(Path(tempfile.mkdtemp(prefix="bench-history-")) / "s.sqlite")
        store.open_store(url).close()
        reports(url)
        rng, have = np.random.default_rng(1), 0
        try:
            for size in sizes:
                started = time.perf_counter()
                fill(url, pg, batches(size, have, rng))
                have = size
                loaded = time.perf_counter() - started
                print(f"{backend}: filled to {size:,} rows in {loaded:.0f} s", flush=True)
                results.append({"backend": backend, "size": size, **measure(url)})
                print(results[-1], flush=True)
        finally:
            if pg:
                pg.stop()
    print("\n| backend | person rows | activity 14 d by hour (s) | 1 d by 5 min (s) | checkpoints (s) | gaps (s) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {r['size']:,} | {r['activity 14 d / 1 h s']:.3f} | "
            f"{r['activity 1 d / 5 min s']:.3f} | {r['checkpoints s']:.3f} | {r['gaps 14 d s']:.3f} |"
        )
    print(f"(at {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
