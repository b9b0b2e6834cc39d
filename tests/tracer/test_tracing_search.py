"""The sightings store's near search: SQLite's sealed segments and unsealed tail find exactly what a plain scan
finds, and PostgreSQL computes the same distances in the engine. Tracing itself: test_tracing.py."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support.events import KEY, T0, checked, event_of

from edge.core import facehash
from edge.tracer import intake, store


def random_code(rng, bits=1024) -> bytes:
    return rng.integers(0, 256, bits // 8, dtype=np.uint8).tobytes()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(0, 40),
    segment=st.integers(1, 8),
    window=st.tuples(st.integers(0, 100), st.integers(0, 100)),
)
def test_sqlite_near_finds_exactly_what_a_plain_scan_finds(tmp_path_factory, seed, rows, segment, window):
    """Sealed segments and the unsealed tail together give the same hits as comparing every row."""
    rng = np.random.default_rng(seed)
    base = [random_code(rng) for _ in range(3)]
    codes, times = [], []
    for _ in range(rows):  # near copies of three people, so some rows fall within the distance
        b = bytearray(base[int(rng.integers(0, 3))])
        for bit in rng.choice(1024, int(rng.integers(0, 300)), replace=False):
            b[bit // 8] ^= 1 << (bit % 8)
        codes.append(bytes(b))
        times.append(int(rng.integers(0, 100)))
    path = tmp_path_factory.mktemp("near") / "s.sqlite"
    original = store.SEGMENT_ROWS
    store.SEGMENT_ROWS = segment
    try:
        db = store.open_store(str(path))
        for code, t in zip(codes, times, strict=True):
            db.add([fake_event(code, t)])
        db.maintain()
        start, end = min(window), max(window)
        query = base[0]
        got = db.near("fh1", KEY.id, 1024, [query], 250, start * 1000 + T0_MS, end * 1000 + T0_MS)
    finally:
        store.SEGMENT_ROWS = original
    expected = sorted(
        (i + 1, d)
        for i, (code, t) in enumerate(zip(codes, times, strict=True))
        if start <= t <= end and (d := bin(int.from_bytes(code) ^ int.from_bytes(query)).count("1")) <= 250
    )
    assert sorted(got.hits) == expected
    assert got.searched == sum(start <= t <= end for t in times)


T0_MS = round(T0 * 1000)


def fake_event(code: bytes, seconds: int) -> intake.Event:
    text = str(facehash.from_packed(KEY.id, code, 1024))
    return checked(event_of([text], "library", seconds, length=0))


def test_postgresql_computes_the_same_distances_in_the_engine(postgres, tmp_path):
    rng = np.random.default_rng(7)
    codes = [random_code(rng) for _ in range(30)]
    stores = [store.open_store(postgres), store.open_store(str(tmp_path / "s.sqlite"))]
    for db in stores:
        db.add([fake_event(c, i) for i, c in enumerate(codes)])
    queries = [codes[3], random_code(rng)]
    results = [db.near("fh1", KEY.id, 1024, queries, 520, T0_MS, T0_MS + 20_000) for db in stores]
    assert results[0] == results[1] and results[0].searched == 21 and results[0].hits[0] == (4, 0)
