"""fh1 and fh2 rows side by side (issue 21): each scheme's trace finds its own rows and only them, on both
engines; a store of schema 4 read as fh1, then upgraded in place; hostile fh2 codes refused one line each;
PostgreSQL's prefilter returns exactly what SQLite's exact search does."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import schemes
from support.events import KEY, NOW, SINCE, STRIDE, T0, event_of
from support.events import checked as checked_v1

from edge.core import facehash, fh2
from edge.core.errors import Refused, TraceError
from edge.tracer import intake, report, store, trace

T0_MS = round(T0 * 1000)
# Obama at the library and at the canteen, each time with someone else; Obama's 3rd photo is the query
PLAN = [
    (["barack_obama/1.jpg", "joe_biden/1.jpg"], "library", 0),
    (["barack_obama/2.jpg", "kit_harington/1.jpg"], "canteen", 3600),
]


@pytest.fixture(scope="module")
def both(embeddings):
    """The plan's events: an fh1 unit at the library (schema 2), an fh2 unit at the canteen (schema 3), and the
    same people a minute later the other way round: each scheme has rows of Obama at both checkpoints, and each
    of his visits has rows of the other scheme around it (not contacts: another scheme's codes)."""
    made = []
    for shift, order in ((0, ("fh1", "fh2")), (60, ("fh2", "fh1"))):
        for (photos, checkpoint, at), scheme in zip(PLAN, order, strict=True):
            codes = [str(schemes.hasher(scheme).hash(embeddings[p])) for p in photos]
            if scheme == "fh1":
                body = event_of(codes, checkpoint, at + shift) | {"schema_version": 2, "clock": "synchronized"}
            else:
                body = schemes.event(codes, checkpoint, at + shift)
            made.append((scheme, body))
    return made


def query(embeddings, scheme: str) -> str:
    return str(schemes.hasher(scheme).hash(embeddings["barack_obama/3.jpg"]))


def test_a_store_of_both_schemes_traces_each_by_its_own_rows(db, both, embeddings, monkeypatch):
    monkeypatch.setattr(store, "SEGMENT_ROWS", 2)  # SQLite: two sealed segments of each scheme, no tail
    assert db.add([schemes.checked(b) for _, b in both]) == [store.STORED] * 4
    db.maintain()
    for scheme in ("fh1", "fh2"):
        result = trace.run(db, [query(embeddings, scheme)], STRIDE, SINCE, now=NOW)
        own = {b["event_id"] for s, b in both if s == scheme}
        assert {s.row.event_id for s in result.sightings} == own, scheme  # both of Obama's rows, no other's
        assert {s.row.scheme for s in result.sightings} == {scheme}
        assert all(s.row.code_text.startswith(f"{scheme}:") for s in result.sightings)
        assert result.point.rows == 4 and result.point.scheme == scheme  # the 4 rows of its scheme, not 8
        contacts = [c.rows[0] for v in result.visits for c in v.contacts]
        assert len(contacts) == 2 and {r.scheme for r in contacts} == {scheme}  # Biden and Harington, its scheme
        words = report.table(result)
        if scheme == "fh1":
            assert f"within {result.point.distance} bits of 1024" in words and "code units" not in words
        else:
            assert f"within distance {result.point.distance} (fh2 code units)" in words and " bits" not in words
        as_json = json.loads(report.as_json(result))
        assert as_json["query"]["scheme"] == scheme
        assert all(isinstance(s["distance"], int if scheme == "fh2" else float) for s in as_json["sightings"])


def test_one_trace_of_both_schemes_or_of_a_scheme_not_stored_is_refused_in_one_line(tmp_path, both, embeddings):
    path = str(tmp_path / "s.sqlite")
    db = store.open_store(path)
    db.add([schemes.checked(b) for s, b in both if s == "fh1"])
    with pytest.raises(TraceError, match=r"one scheme \(these are fh1 and fh2\)"):
        trace.run(db, [query(embeddings, "fh1"), query(embeddings, "fh2")], STRIDE, SINCE, now=NOW)
    with pytest.raises(TraceError, match="holds no 1024-bit fh2 FaceHashes of key"):
        trace.run(db, [query(embeddings, "fh2")], STRIDE, SINCE, now=NOW)
    db.close()
    said = subprocess.run(
        [sys.executable, "-m", "edge.cli", "trace", query(embeddings, "fh1"), query(embeddings, "fh2"), "--db", path],
        capture_output=True,
        text=True,
    )
    assert said.returncode == 1 and "Traceback" not in said.stderr
    assert len(said.stderr.strip().splitlines()) == 1 and "one scheme" in said.stderr


def as_schema_4(url: str) -> None:
    """Take a store back to what schema 4 made: no scheme column, no filter bits, the old indexes."""
    db = store.open_store(url)
    with db.transaction():
        if db.kind == "sqlite":
            db.execute("DROP INDEX persons_key")
            db.execute("DROP INDEX segments_key_time")
            db.execute("ALTER TABLE segments DROP COLUMN scheme")
            db.execute("CREATE INDEX segments_key_time ON segments (key_id, bits, max_ms)")
            db.execute("ALTER TABLE persons DROP COLUMN scheme")
            db.execute("CREATE INDEX persons_key ON persons (key_id, bits)")
        else:
            db.execute("DROP INDEX persons_key_time")
            db.execute("ALTER TABLE persons DROP COLUMN scheme")
            db.execute("ALTER TABLE persons DROP COLUMN filter")
            db.execute("CREATE INDEX persons_key_time ON persons (key_id, bits, started_ms)")
        db.set_meta("schema_version", "4")
    db.close()


def test_a_schema_4_store_is_read_as_fh1_then_upgraded_in_place_to_hold_fh2(db_url, both, embeddings, monkeypatch):
    monkeypatch.setattr(store, "SEGMENT_ROWS", 2)  # fh1 rows sealed before the upgrade: old segments too
    fh1 = [b for s, b in both if s == "fh1"]
    db = store.open_store(db_url)
    db.add([schemes.checked(b) for b in fh1])
    db.maintain()
    db.close()
    as_schema_4(db_url)

    reader = store.open_store(db_url, read_only=True)
    try:
        assert not reader.schemed and reader.meta("schema_version") == "4"
        found = trace.run(reader, [query(embeddings, "fh1")], STRIDE, SINCE, now=NOW)
        assert {s.row.event_id for s in found.sightings} == {b["event_id"] for b in fh1}
        assert {s.row.scheme for s in found.sightings} == {"fh1"}
        with pytest.raises(TraceError, match="holds no 1024-bit fh2 FaceHashes"):
            trace.run(reader, [query(embeddings, "fh2")], STRIDE, SINCE, now=NOW)
    finally:
        reader.close()

    db = store.open_store(db_url, upgrade=True)
    try:
        assert db.meta("schema_version") == str(store.SCHEMA_VERSION) == "5" and db.schemed
        fh2_events = [b for s, b in both if s == "fh2"]
        assert db.add([schemes.checked(b) for b in fh2_events]) == [store.STORED] * 2
        db.maintain()
        for scheme, expected in (("fh1", fh1), ("fh2", fh2_events)):
            result = trace.run(db, [query(embeddings, scheme)], STRIDE, SINCE, now=NOW)
            assert {s.row.event_id for s in result.sightings} == {b["event_id"] for b in expected}, scheme
            assert result.point.rows == 4 and result.unreadable == 0
    finally:
        db.close()


def test_a_failed_upgrade_changes_nothing(tmp_path, both):
    """One transaction: an upgrade that fails half way (here: at an index whose name a table took) leaves schema 4."""
    path = str(tmp_path / "s.sqlite")
    db = store.open_store(path)
    db.add([schemes.checked(b) for s, b in both if s == "fh1"])
    db.close()
    as_schema_4(path)
    db = store.open_store(path)  # no upgrade asked: read as it is
    db.close()
    raw = sqlite3.connect(path)
    raw.execute("DROP INDEX persons_key")
    raw.execute("CREATE TABLE persons_key (x)")  # the upgrade adds its columns, then fails to remake the index
    raw.commit()
    raw.close()
    with pytest.raises(store.StoreError, match="already a table named persons_key"):
        store.open_store(path, upgrade=True)
    raw = sqlite3.connect(path)
    columns = {row[1] for row in raw.execute("PRAGMA table_info(persons)")}
    columns |= {row[1] for row in raw.execute("PRAGMA table_info(segments)")}
    version = raw.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0]
    raw.close()
    assert "scheme" not in columns and version == "4"


# --- hostile fh2 codes ---------------------------------------------------------------------------------------


def hostile(rng) -> list[tuple[str, dict, str]]:
    person = schemes.fh2_person(rng)
    good = schemes.fh2_text(person)
    low = person.copy()
    low[7] = -128
    short = str(facehash.from_packed(KEY.id, person.tobytes()[:127], 1016, "fh2"))
    other = schemes.fh2_text(person, key_id=facehash.Key(b"another deployment's key........").id)
    fh1 = str(schemes.hasher("fh1").hash(np.full(128, 128**-0.5)))
    return [
        ("an fh2 code of 127 bytes", schemes.body([short], "door", 0, "fh2"), "persons/0/facehash"),
        ("a coordinate of -128", schemes.body([schemes.fh2_text(low)], "door", 0, "fh2"), "out of range"),
        ("another key", schemes.body([other], "door", 0, "fh2"), "another key than the event's key_id"),
        ("fh2 in an fh1 event", schemes.body([good], "door", 0, "fh1"), "persons/0/facehash"),
        ("fh1 in an fh2 event", schemes.body([fh1], "door", 0, "fh2"), "persons/0/facehash"),
        ("fh2 in a schema 2 event", schemes.body([good], "door", 0, "fh1", version=2), "persons/0/facehash"),
        ("a scheme not known", schemes.body([good], "door", 0, "fh3"), "is not in the expected form"),
    ]


def test_hostile_fh2_codes_are_refused_in_one_line_each():
    for what, made, reason in hostile(np.random.default_rng(21)):
        with pytest.raises(Refused) as refused:
            schemes.checked(made)
        line = str(refused.value)
        assert reason in line and "\n" not in line and made["persons"][0]["facehash"][4:] not in line, (what, line)


def test_behind_the_schema_intake_still_refuses_what_cannot_be_stored_together():
    """intake.build (also what an upgrade of schema 1 runs) checks the codes itself, not only through the schema."""
    cases = {case[0]: case for case in hostile(np.random.default_rng(22))}
    expect = {
        "an fh2 code of 127 bytes": "(its fh2 code is 127 bytes long, not 128)",
        "a coordinate of -128": "(its fh2 code has a coordinate out of range",
        "another key": "another key than the event's key_id",
        "fh2 in an fh1 event": "is an fh2 FaceHash in an event of scheme fh1",
        "fh1 in an fh2 event": "is an fh1 FaceHash in an event of scheme fh2",
    }
    for what, reason in expect.items():
        with pytest.raises(Refused, match=re.escape(reason)):
            intake.build(cases[what][1])
    made = schemes.body([schemes.fh2_text(schemes.fh2_person(np.random.default_rng(3)))], "door", 0, "fh2")
    assert intake.build(made).scheme == "fh2" and intake.build(made).bits == 1024


def test_events_of_schema_1_and_2_are_fh1():
    fh1 = str(schemes.hasher("fh1").hash(np.full(128, 128**-0.5)))
    assert checked_v1(event_of([fh1], "door", 0)).scheme == "fh1"


# --- the prefilter loses nothing -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_engines(postgres_server, tmp_path_factory):
    engines = [store.open_store(str(tmp_path_factory.mktemp("prefilter") / "s.sqlite"))]
    engines.append(store.open_store(postgres_server.new_database()))
    yield engines
    for engine in engines:
        engine.close()


WINDOWS = iter(range(10**6))  # each example stores its rows in a window of its own


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    spreads=st.lists(st.floats(2, 40), min_size=5, max_size=40),
    max_distance=st.integers(120, 420),
    queries=st.integers(1, 3),
)
def test_postgresql_finds_exactly_the_fh2_rows_sqlite_finds(two_engines, seed, spreads, max_distance, queries):
    """Rows at every distance from the queries (coordinates plus noise of each spread), in both engines: both
    return the same (row, distance) pairs, those the exact distances give. A prefilter that dropped a row within
    the distance fails here."""
    rng = np.random.default_rng(seed)
    people = [schemes.fh2_person(rng) for _ in range(queries)]
    rows = [np.clip(people[i % queries] + np.rint(rng.normal(0, s, 128)), -127, 127) for i, s in enumerate(spreads)]
    for i in range(40):  # and rows just inside and outside the distance, where a prefilter too tight loses them
        step = rng.normal(0, 1, 128)
        rows.append(
            np.clip(people[i % queries] + np.rint(step * (max_distance + 8 - i) / np.linalg.norm(step)), -127, 127)
        )
    rows += [schemes.fh2_person(rng) for _ in range(5)]  # strangers
    window = next(WINDOWS) * 100_000
    made = [
        schemes.event([schemes.fh2_text(r) for r in rows[i : i + 4]], "door", window / 1000 + i, "fh2")
        for i in range(0, len(rows), 4)
    ]
    codes = [p.astype(np.int8).tobytes() for p in people]
    start, end = T0_MS + window, T0_MS + window + 90_000
    found = []
    for engine in two_engines:
        engine.add([schemes.checked(m) for m in made])
        found.append(engine.near("fh2", KEY.id, 1024, codes, max_distance, start, end))
    truth = fh2.distances(np.array([np.asarray(r, np.int8) for r in rows]).view(np.uint8), codes)
    expected = sorted(int(d) for d in truth if d <= max_distance)
    assert sorted(d for _, d in found[0].hits) == expected
    by_position = [
        sorted((r.event_id, r.position, d) for r, (_, d) in zip(e.rows([i for i, _ in f.hits]), f.hits, strict=True))
        for e, f in zip(two_engines, found, strict=True)
    ]
    assert by_position[0] == by_position[1]
    assert found[0].searched == found[1].searched == len(rows)
