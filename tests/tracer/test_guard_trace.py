"""Guards on a trace's edges (issue 18, item 8): each test holds one boundary that a one-line change moved
unseen before. Stores are built from rows of known codes and times, so that each distance and each gap is
exactly what the test says: codes are random 1024-bit FaceHashes (about 512 bits from each other) and the
traced person's rows are the query with a chosen number of bits flipped.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import uuid

import numpy as np
import pytest
from support.data import ROOT

from edge.core import events, facehash
from edge.core.facehash import Key
from edge.tracer import intake, operating_point, store, trace

KEY_ID = Key(b"guard tests: a key of their own.").id
BITS = 1024
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
NOW = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)  # the trace's `now`: a whole second
NOW_MS = round(NOW.timestamp() * 1000)
STRIDE = datetime.timedelta(minutes=30)
STRIDE_MS = 30 * 60 * 1000
SINCE = datetime.timedelta(days=14)
MINUTE = 60_000


def stamp(ms: int) -> str:
    """The event time stamp of this exact millisecond (no float on the way)."""
    return (EPOCH + datetime.timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def code_text(code: bytes) -> str:
    return str(facehash.from_packed(KEY_ID, code, BITS))


def random_code(rng: np.random.Generator) -> bytes:
    return rng.integers(0, 256, BITS // 8, dtype=np.uint8).tobytes()


def flipped(code: bytes, n: int, rng: np.random.Generator) -> bytes:
    """`code` with exactly n of its bits flipped: n bits from it."""
    out = bytearray(code)
    for bit in rng.choice(BITS, n, replace=False):
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def bits_apart(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a) ^ int.from_bytes(b)).bit_count()


def row(code: bytes, started_ms: int, ended_ms: int | None = None, checkpoint: str = "library") -> intake.Event:
    """One event with one person, checked as the collector checks what comes off the broker."""
    body = {
        "schema_version": 2,
        "event_id": str(uuid.uuid4()),
        "site": "campus",
        "checkpoint": checkpoint,
        "device": "unit-1",
        "trigger": "pir",
        "started_at": stamp(started_ms),
        "ended_at": stamp(started_ms if ended_ms is None else ended_ms),
        "clock": "synchronized",
        "frames": 3,
        "faces": 1,
        "persons": [
            {"facehash": code_text(code), "frames": 2, "quality": {"size": 120, "frontalness": 0.9, "sharpness": 80.0}}
        ],
        "model": "dlib_resnet_v1_int8@b5208826d4c0",
        "key_id": KEY_ID,
        "software": "traceon-edge 0.1.0",
    }
    topic = f"traceon/campus/{checkpoint}/unit-1/events"
    now_ms = round(NOW.timestamp() * 1000)  # the collector's clock, at the trace's `now`
    return intake.check(topic, json.dumps(events.validate(body)).encode(), "traceon", now_ms=now_ms)


@pytest.fixture
def rng():
    return np.random.default_rng(18)


def test_the_stamps_are_exact_to_the_millisecond():
    """What the other tests rest on: a row stored at t ms is read back at t ms."""
    for ms in (NOW_MS, NOW_MS - 1, NOW_MS - STRIDE_MS + 1, 1_234_567_890_123):
        stored = row(bytes(BITS // 8), ms, ms + 1)
        assert (stored.started_ms, stored.ended_ms) == (ms, ms + 1)


# --- the operating point --------------------------------------------------------------------------------


def test_max_false_on_the_command_line_sets_the_threshold(tmp_path, rng):
    """100 rows: --max-false 0.1 allows a FAR of 1e-3 per row, the default 1 allows 1e-2. A row just inside
    the strict threshold is found either way; one just outside it, and one at the default's, only by default."""
    query = random_code(rng)
    strict = operating_point.choose(BITS, 100, max_false=0.1).distance
    loose = operating_point.choose(BITS, 100).distance
    assert 0 < strict < loose - 1  # the curve tells the two apart
    now_ms = int(datetime.datetime.now(datetime.UTC).timestamp()) * 1000
    hour = 60 * MINUTE
    near = {d: flipped(query, d, rng) for d in (strict, strict + 1, loose)}
    strangers = [random_code(rng) for _ in range(100 - len(near))]
    assert all(bits_apart(query, s) > loose for s in strangers)
    path = tmp_path / "s.sqlite"
    db = store.open_store(str(path))
    rows = [row(c, now_ms - hour - i * MINUTE, checkpoint="canteen") for i, c in enumerate(strangers)]
    rows += [row(c, now_ms - 3 * hour - i * hour) for i, c in enumerate(near.values())]
    assert db.add(rows) == [store.STORED] * 100
    db.close()

    def cli(*extra: str) -> dict:
        command = [
            sys.executable,
            "-m",
            "edge.cli",
            "trace",
            code_text(query),
            "--db",
            str(path),
            "--since",
            "1d",
            "--format",
            "json",
            *extra,
        ]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def found(report: dict) -> set[int]:
        by_text = {code_text(c): d for d, c in near.items()}
        return {by_text[s["facehash"]] for s in report["sightings"]}

    asked = cli("--max-false", "0.1")
    assert asked["operating_point"]["rows_searched"] == 100
    assert asked["operating_point"]["max_distance_bits"] == strict
    assert asked["operating_point"]["expected_false_sightings"] <= 0.1
    assert found(asked) == {strict}
    default = cli()
    assert default["operating_point"]["max_distance_bits"] == loose
    assert found(default) == {strict, strict + 1, loose}


@pytest.mark.parametrize("rows", [1, 99, 100])
def test_no_trace_accepts_more_than_one_percent_of_strangers_per_row(db, rng, rows):
    """However few rows are searched (1: a budget of 100 %; 99: 1.01 %), the FAR per row stops at 1 %, and
    so does the distance; at 100 rows the budget is exactly 1 % and nothing is capped."""
    cap = operating_point.curve(BITS, 1).distance_at(operating_point.MAX_FAR)
    assert operating_point.curve(BITS, 1).far[cap + 1] > operating_point.MAX_FAR  # the next bit is over 1 %
    query = random_code(rng)
    at_cap = flipped(query, cap, rng)
    strangers = [random_code(rng) for _ in range(rows - 1)]
    db.add(
        [row(at_cap, NOW_MS - 60 * MINUTE)] + [row(c, NOW_MS - 2 * 60 * MINUTE - i) for i, c in enumerate(strangers)]
    )
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    point = result.point
    assert point.rows == rows
    assert point.distance == cap, f"{rows} row(s): a sighting within {point.distance} bits, FAR {point.far}"
    assert point.far <= operating_point.MAX_FAR
    assert point.capped == (rows < 100)
    assert [s.distance for s in result.sightings] == [cap]
    for budget in ({"max_false": 1.0}, {"far": 0.05}):  # the operating point itself, asked directly
        direct = operating_point.choose(BITS, rows, **budget)
        assert direct.distance == cap and direct.far <= operating_point.MAX_FAR


# --- the window ----------------------------------------------------------------------------------------


def test_since_leaves_out_every_row_that_started_before_the_window(db, rng):
    """--since 14d: a row that started exactly 14 days before now is in, one a millisecond earlier is not,
    nor are older ones; only the rows inside are counted as searched."""
    query = random_code(rng)
    since_ms = NOW_MS - 14 * 24 * 60 * MINUTE
    inside = {"at the edge": since_ms, "yesterday": NOW_MS - 24 * 60 * MINUTE}
    outside = {"a millisecond before": since_ms - 1, "a month before": NOW_MS - 30 * 24 * 60 * MINUTE}
    made = {name: row(flipped(query, 5, rng), ms) for name, ms in {**inside, **outside}.items()}
    db.add(list(made.values()))
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    assert result.since_ms == since_ms
    seen = {name for name, event in made.items() if event.event_id in {s.row.event_id for s in result.sightings}}
    assert seen == set(inside)
    assert result.point.rows == len(inside)


def test_a_sighting_exactly_one_stride_after_the_visits_last_belongs_to_that_visit(db, rng):
    """Visits at one checkpoint split where the gap is more than the stride: exactly the stride is one visit,
    a millisecond more is two."""
    query = random_code(rng)
    first = (NOW_MS - 5 * 60 * MINUTE, NOW_MS - 5 * 60 * MINUTE + 1000)
    second = first[1] + STRIDE_MS  # starts exactly one stride after the first ended
    third = second + 1000 + STRIDE_MS + 1  # starts a stride and a millisecond after the second ended
    made = [row(flipped(query, 3 + i, rng), start, start + 1000) for i, start in enumerate((first[0], second, third))]
    db.add(made)
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    which = {e.event_id: n for n, e in zip(("first", "second", "third"), made, strict=True)}
    visits = [[which[s.row.event_id] for s in v.sightings] for v in result.visits]
    assert visits == [["first", "second"], ["third"]]


def test_contacts_exactly_one_stride_away_are_listed_and_a_millisecond_further_are_not(db, rng):
    """One sighting from t to t + 1 s. Someone who left exactly one stride before t, or came exactly one
    stride after t + 1 s, was there within the stride; a millisecond further either way, not."""
    query = random_code(rng)
    start, end = NOW_MS - 5 * 60 * MINUTE, NOW_MS - 5 * 60 * MINUTE + 1000
    people = {name: random_code(rng) for name in ("left at the edge", "left earlier", "came at the edge", "came later")}
    times = {
        "left at the edge": (start - STRIDE_MS - 5000, start - STRIDE_MS),
        "left earlier": (start - STRIDE_MS - 5001, start - STRIDE_MS - 1),
        "came at the edge": (end + STRIDE_MS, end + STRIDE_MS + 5000),
        "came later": (end + STRIDE_MS + 1, end + STRIDE_MS + 5001),
    }
    db.add([row(flipped(query, 4, rng), start, end)] + [row(people[n], *times[n]) for n in people])
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    [visit] = result.visits
    by_text = {code_text(c): name for name, c in people.items()}
    listed = {by_text[c.rows[0].code_text]: c.gap_ms for c in visit.contacts}
    assert listed == {"left at the edge": -STRIDE_MS, "came at the edge": STRIDE_MS}
