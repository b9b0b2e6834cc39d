"""Outbox `put` cost when the outbox is full (drop_oldest at every put) against an empty one, in one run.

    python tools/bench_outbox.py [--events 100000] [--puts 2000]

Fills an outbox to `--events` (the default max_events) with events of one person (~700 bytes, made by the unit's
own code: tools/unit_events.py), then times `--puts` more puts, each of which must drop the oldest; the baseline is
the same number of puts into an empty outbox.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import unit_events  # noqa: E402

from edge.core import facehash  # noqa: E402
from edge.unit.outbox import Outbox  # noqa: E402


def timed_puts(outbox: Outbox, count: int, template: dict) -> list[float]:
    took = []
    for _ in range(count):
        e = unit_events.another(template)
        started = time.perf_counter()
        outbox.put(e)
        took.append(time.perf_counter() - started)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--puts", type=int, default=2000)
    args = parser.parse_args()
    hasher = facehash.FaceHasher(facehash.Key(b"o" * 32), facehash.load_scheme())
    template = unit_events.event(hasher, unit_events.random_embeddings(1), time.time())
    with tempfile.TemporaryDirectory() as folder:
        empty = Outbox(Path(folder) / "empty.sqlite", args.events, 10**10)
        baseline = timed_puts(empty, args.puts, template)
        empty.close()
        full = Outbox(Path(folder) / "full.sqlite", args.events, 10**10)
        started = time.perf_counter()
        timed_puts(full, args.events, template)
        filled_in = time.perf_counter() - started
        at_limit = timed_puts(full, args.puts, template)
        depth, dropped = full.depth(), full.dropped()
        full.close()
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    p99 = lambda xs: sorted(xs)[int(len(xs) * 0.99)] * 1000  # noqa: E731
    size = len(json.dumps(template, separators=(",", ":")))
    print(f"outbox of {args.events:,} events of {size} bytes (one person) filled in {filled_in:.1f} s")
    print(f"put into an empty outbox: median {ms(baseline):.3f} ms, p99 {p99(baseline):.3f} ms")
    print(
        f"put into a full outbox:   median {ms(at_limit):.3f} ms, p99 {p99(at_limit):.3f} ms "
        f"({ms(at_limit) / ms(baseline):.2f}× the empty one); depth {depth:,}, dropped {dropped:,}"
    )


if __name__ == "__main__":
    main()
