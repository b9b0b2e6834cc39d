"""Benchmark of a trace at a flooded checkpoint (issue 19; it prints numbers, it asserts nothing): the whole
`traceon-edge trace` command on a SQLite store holding one sighting of the traced person, three people
seen five times each, and N random FaceHashes from one chatty unit, all in the same visit's window.

    python tools/bench_flood_trace.py [--sizes 10000,200000] [--tree after=.] [--tree before=/tmp/before-trace]
                                      [--timeout 600]

Each --tree is a checkout whose code runs the command (PYTHONPATH), e.g. the code before issue 19:
`git clone -q /work/main /tmp/before-trace && git -C /tmp/before-trace checkout -q 7d0e22f`. The store is
built once per size by this checkout's store (the schema both read) and sealed as a collector seals it.
A run that passes --timeout is reported as more than that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.core import facehash  # noqa: E402
from edge.tracer import intake, store  # noqa: E402

KEY_ID = facehash.Key(b"traceon-edge flood benchmark key").id
BITS = 1024
PER_EVENT = 50  # persons in each of the chatty unit's events
MINUTE = 60_000


def event(device: str, at_ms: int, codes: list[bytes]) -> intake.Event:
    """An event as intake would make it (the benchmark made it valid: no need to check it again)."""
    body = {"event_id": str(uuid.uuid4()), "device": device, "persons": len(codes)}
    text = json.dumps(body, sort_keys=True)
    return intake.Event(body, text, "campus", "door", device, at_ms, at_ms + 1000, KEY_ID, BITS, tuple(codes))


def flipped(code: bytes, n: int, rng: np.random.Generator) -> bytes:
    bits = np.unpackbits(np.frombuffer(code, np.uint8))
    bits[rng.choice(BITS, n, replace=False)] ^= 1
    return np.packbits(bits).tobytes()


def build(path: Path, junk: int, rng: np.random.Generator) -> str:
    """The store; returns the query FaceHash (the traced person's sighting is 20 bits from it)."""
    now_ms = int(time.time()) * 1000
    at = now_ms - 24 * 60 * MINUTE  # the sighting, a day ago
    query = rng.integers(0, 256, BITS // 8, dtype=np.uint8).tobytes()
    made = [event("unit-1", at, [flipped(query, 20, rng)])]
    for _ in range(3):  # people who were there: each seen five times, a few bits apart each time
        person = rng.integers(0, 256, BITS // 8, dtype=np.uint8).tobytes()
        made += [
            event("unit-1", at + int(rng.integers(-25, 25)) * MINUTE, [flipped(person, 30, rng)]) for _ in range(5)
        ]
    codes = rng.integers(0, 256, (junk, BITS // 8), dtype=np.uint8)
    for first in range(0, junk, PER_EVENT):
        when = at + int(rng.integers(-29 * MINUTE, 29 * MINUTE))
        made.append(event("unit-9", when, [bytes(c) for c in codes[first : first + PER_EVENT]]))
    db = store.open_store(str(path))
    try:
        with db.transaction():
            marks = ", ".join("?" * len(store.EVENT_COLUMNS))
            db.db.executemany(
                f"INSERT INTO events ({', '.join(store.EVENT_COLUMNS)}) VALUES ({marks})",
                [db.event_values(e, e.started_ms) for e in made],
            )
            marks = ", ".join("?" * len(db.person_columns()))
            db.db.executemany(
                f"INSERT INTO persons ({', '.join(db.person_columns())}) VALUES ({marks})",
                [row for e in made for row in db.person_values(e)],
            )
        db.maintain()  # seal segments, as a running collector does
    finally:
        db.close()
    return str(facehash.from_packed(KEY_ID, query, BITS))


def run(tree: Path, path: Path, query: str, timeout: float) -> tuple[float | None, str]:
    """Wall seconds of one `traceon-edge trace` (None past the timeout) and what it printed."""
    command = [sys.executable, "-m", "edge.cli", "trace", query, "--db", str(path), "--since", "3d"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=tree)
    except subprocess.TimeoutExpired:
        return None, ""
    if done.returncode:
        raise SystemExit(f"trace in {tree} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,200000", help="junk rows from the chatty unit")
    parser.add_argument("--tree", action="append", metavar="NAME=PATH", help="a checkout to run (default after=.)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run counts as too slow")
    args = parser.parse_args()
    trees = [t.split("=", 1) for t in args.tree or [f"after={ROOT}"]]
    folder = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    print(f"machine: {os.cpu_count()} cores; store: {folder}", flush=True)
    results = []
    for size in (int(float(s)) for s in args.sizes.split(",")):
        path = folder / f"flood-{size}.sqlite"
        started = time.perf_counter()
        query = build(path, size, np.random.default_rng(size))
        print(f"built {path.name}: {size:,} junk rows in {time.perf_counter() - started:.1f} s", flush=True)
        for name, tree in trees:
            seconds, said = run(Path(tree).resolve(), path, query, args.timeout)
            lines = said.count("\n")
            took = f"{seconds:.2f}" if seconds is not None else f">{args.timeout:.0f} (stopped)"
            results.append((size, name, took, lines, len(said)))
            print(f"{name}: {size:,} junk rows: {took} s, {lines:,} lines of report", flush=True)
    print("\n| junk rows in the visit | code | trace command (s) | report lines | report bytes |")
    print("|---|---|---|---|---|")
    for size, name, took, lines, size_bytes in results:
        print(f"| {size:,} | {name} | {took} | {lines:,} | {size_bytes:,} |")


if __name__ == "__main__":
    main()
