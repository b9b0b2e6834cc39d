"""Benchmark of contact grouping in one visit (issue 19; it prints numbers, it asserts nothing): the rows
around a visit grouped into people by trace._contacts, against the quadratic loop it replaced (kept
below as the baseline), in the same process.

    python tools/bench_contacts.py [--sizes 1000,10000,100000] [--old-limit 10000]

Rows: random 1024-bit FaceHashes (a chatty unit's junk: every row its own contact) plus five persons
seen 20 times each, each time 40 bits from their own code. The old loop is run up to --old-limit rows;
above it its time is estimated from a quadratic fit of the sizes it ran (it would take minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.tracer import operating_point, trace
from edge.tracer.store import Row

BITS = 1024
PERSONS, SEEN, NOISE = 5, 20, 40


def old_contacts(visit: trace.Visit, rows: list[Row], link: int) -> list[trace.Contact]:
    """trace._contacts before issue 19: each row compared with every contact's first row, in Python."""
    contacts: list[trace.Contact] = []
    for row in rows:
        gap = min((trace.gap_ms(row, s.row) for s in visit.sightings), key=abs)
        for contact in contacts:
            if trace.bits_apart(contact.rows[0].code, row.code) <= link:
                contact.rows.append(row)
                contact.gap_ms = min(contact.gap_ms, gap, key=abs)
                break
        else:
            contacts.append(trace.Contact([row], gap))
    return contacts


def visit_rows(size: int, rng: np.random.Generator) -> tuple[trace.Visit, list[Row]]:
    at = 1_900_000_000_000

    def row(i: int, code: bytes) -> Row:
        started = at + int(rng.integers(-1_800_000, 1_800_000))
        return Row(i, f"e{i}", 0, "campus", "door", "unit-9", started, started + 1000, "k", BITS, None, code)

    people = rng.integers(0, 256, (PERSONS, BITS // 8), dtype=np.uint8)
    codes = list(rng.integers(0, 256, (size - PERSONS * SEEN, BITS // 8), dtype=np.uint8))
    for person in people:
        for _ in range(SEEN):
            bits = np.unpackbits(person)
            bits[rng.choice(BITS, NOISE, replace=False)] ^= 1
            codes.append(np.packbits(bits))
    rng.shuffle(codes)
    rows = sorted((row(i, bytes(c)) for i, c in enumerate(codes)), key=lambda r: (r.started_ms, r.id))
    sighting = trace.Sighting(row(-1, bytes(BITS // 8)), 10)
    return trace.Visit("campus", "door", [sighting]), rows


def timed(function, *args) -> tuple[float, list[trace.Contact]]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--old-limit", type=int, default=10_000, help="largest size the old loop is run at")
    args = parser.parse_args()
    link = operating_point.curve(BITS, 1).distance_at(trace.CONTACT_LINK_FAR)
    print(f"{BITS}-bit codes, contact link {link} bits; {PERSONS} persons seen {SEEN} times each, the rest random")
    print("\n| rows in the visit | contacts | new (s) | old (s) | old / new | same groups |")
    print("|---|---|---|---|---|---|")
    fit: list[tuple[int, float]] = []
    for size in (int(float(s)) for s in args.sizes.split(",")):
        visit, rows = visit_rows(size, np.random.default_rng(size))
        new_s, new = timed(trace._contacts, visit, rows, link)
        if size <= args.old_limit:
            old_s, old = timed(old_contacts, visit, rows, link)
            fit.append((size, old_s))
            same = [[r.id for r in c.rows] for c in new] == [[r.id for r in c.rows] for c in old]
            said, same_text = f"{old_s:.2f}", "yes" if same else "NO"
        else:
            scale = np.mean([s / n**2 for n, s in fit]) if fit else float("nan")
            old_s = scale * size**2
            said, same_text = f"~{old_s:.0f} (estimated: n² fit, not run)", "not run"
        print(f"| {size:,} | {len(new):,} | {new_s:.3f} | {said} | {old_s / new_s:.0f}× | {same_text} |", flush=True)


if __name__ == "__main__":
    main()
