"""Contact tracing from stored sightings: the store, the operating point, visits and contacts, refusals. The
store's near search against a plain scan and PostgreSQL: test_tracing_search.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tomllib

import pytest
from support.data import ROOT
from support.events import KEY, NOW, SINCE, STRIDE, T0, checked, event_of

from edge.core import facehash
from edge.core.facehash import FaceHasher, Key
from edge.tracer import operating_point, store, trace


@pytest.fixture(scope="session")
def day(hasher, embeddings):
    """A day on campus from real photos: (photo names, checkpoint, minutes after T0) → events."""
    plan = [
        (["barack_obama/1.jpg", "joe_biden/1.jpg"], "library", 0),
        (["rose_leslie/1.jpg"], "library", 120),  # two hours later: outside the stride
        (["kit_harington/1.jpg"], "canteen", 10),  # 15 minutes before Obama arrives there
        (["barack_obama/2.jpg"], "canteen", 25),
        (["john_lennon/1.jpg"], "canteen", 300),
    ]
    return [event_of([str(hasher.hash(embeddings[p])) for p in photos], cp, 60 * m) for photos, cp, m in plan]


def test_trace_lists_sightings_and_the_people_met_within_the_stride(db, hasher, embeddings, day):
    assert db.add([checked(e) for e in day]) == [store.STORED] * 5
    assert db.add([checked(day[0])]) == [store.REPEATED]  # a resent event is stored once
    probe = str(hasher.hash(embeddings["barack_obama/3.jpg"]))
    result = trace.run(db, [probe], STRIDE, SINCE, now=NOW)
    assert [(s.row.checkpoint, s.row.event_id) for s in sorted(result.sightings, key=lambda s: s.row.started_ms)] == [
        ("library", day[0]["event_id"]),
        ("canteen", day[3]["event_id"]),
    ]
    assert [s.distance for s in result.sightings] == sorted(s.distance for s in result.sightings)  # ranked
    assert all(s.distance <= result.point.distance for s in result.sightings)
    met = {v.checkpoint: [c.rows[0].code_text for c in v.contacts] for v in result.visits}
    assert met == {"library": [day[0]["persons"][1]["facehash"]], "canteen": [day[2]["persons"][0]["facehash"]]}
    canteen = next(v for v in result.visits if v.checkpoint == "canteen")
    assert canteen.contacts[0].gap_ms == -(15 * 60 - 1) * 1000  # Kit left 14:59 before Obama came
    assert result.point.rows == 6  # every person row of the key in the window was searched


def test_a_facehash_of_another_key_is_refused_clearly(tmp_path, embeddings, day):
    db = store.open_store(str(tmp_path / "s.sqlite"))
    db.add([checked(e) for e in day])
    db.close()
    other = FaceHasher(Key(b"another deployment's key........"), facehash.load_scheme())
    code = str(other.hash(embeddings["barack_obama/1.jpg"]))
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "trace", code, "--db", str(tmp_path / "s.sqlite")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"made with key {other.key.id}, but the database holds sightings of key(s) {KEY.id}" in result.stderr
    assert "cannot be linked" in result.stderr


def test_contacts_just_inside_the_stride_are_listed_and_just_outside_are_not(db, hasher, embeddings):
    """Obama at the library from 10:00:00 to 10:00:01; four people seen 1 s inside or outside 30 min either side."""
    code = {p.split("/")[0]: str(hasher.hash(e)) for p, e in embeddings.items() if p.endswith("/1.jpg")}
    half = 30 * 60
    at, end = 3600, 3601  # the sighting, in seconds after T0
    batch = [
        event_of([code["barack_obama"]], "library", at),
        event_of([code["joe_biden"]], "library", at - (half - 1) - 1),  # ends 29:59 before it starts: in
        event_of([code["kit_harington"]], "library", at - (half + 1) - 1),  # ends 30:01 before: out
        event_of([code["rose_leslie"]], "library", end + half - 1),  # starts 29:59 after it ends: in
        event_of([code["john_lennon"]], "library", end + half + 1),  # starts 30:01 after: out
        event_of([code["joe_biden"]], "canteen", at),  # the same moment at another checkpoint: out
    ]
    db.add([checked(e) for e in batch])
    result = trace.run(db, [str(hasher.hash(embeddings["barack_obama/3.jpg"]))], STRIDE, SINCE, now=NOW)
    [visit] = result.visits
    listed = {c.rows[0].code_text: c.gap_ms for c in visit.contacts}
    assert listed == {code["joe_biden"]: -(half - 1) * 1000, code["rose_leslie"]: (half - 1) * 1000}


def test_one_line_per_contact_person_per_visit(db, hasher, embeddings):
    """Obama seen twice in a visit; Kit in three bursts around him is one contact seen three times, Biden another."""
    code = {p: str(hasher.hash(e)) for p, e in embeddings.items()}
    batch = [
        event_of([code["barack_obama/1.jpg"]], "library", 0),
        event_of([code["barack_obama/2.jpg"]], "library", 600),
    ]
    kit = ["kit_harington/1.jpg", "kit_harington/2.jpg", "kit_harington/1.jpg"]
    batch += [event_of([code[k]], "library", -300 + 450 * i) for i, k in enumerate(kit)]
    batch += [event_of([code["joe_biden/1.jpg"]], "library", 600)]
    batch += [event_of([code["barack_obama/2.jpg"]], "library", 7200)]  # a second visit, two hours later: nobody
    db.add([checked(e) for e in batch])
    result = trace.run(db, [str(hasher.hash(embeddings["barack_obama/3.jpg"]))], STRIDE, SINCE, now=NOW)
    assert [len(v.sightings) for v in result.visits] == [2, 1]
    kit_line, biden_line = result.visits[0].contacts
    assert len(kit_line.rows) == 3 and kit_line.first_ms == round((T0 - 300) * 1000)
    assert kit_line.last_ms == round((T0 + 601) * 1000) and kit_line.rows[0].code_text == code[kit[0]]
    assert len(biden_line.rows) == 1 and biden_line.gap_ms == 0  # he came while Obama was still there
    assert result.visits[1].contacts == []


def test_the_threshold_follows_the_expected_false_sightings_over_the_rows_searched():
    small = operating_point.choose(1024, 100)
    large = operating_point.choose(1024, 1_000_000)
    assert large.distance < small.distance  # more rows, stricter threshold
    assert large.expected_false <= 1.0 and small.expected_false <= 1.0
    assert operating_point.choose(1024, 1_000_000, max_false=10).distance > large.distance
    assert operating_point.choose(1024, 10).capped  # a handful of rows may not accept 10 % strangers
    two = operating_point.choose(1024, 1_000_000, codes=2)
    assert two.distance <= large.distance and two.expected_false <= 1.0  # each code spends half the budget
    assert operating_point.choose(1024, 1_000_000, photos=3).tar > large.tar  # a stronger query finds more
    fixed = operating_point.choose(1024, 5000, far=1e-4)
    assert fixed.far <= 1e-4 and abs(fixed.expected_false - 5000 * fixed.far) < 1e-9


def test_a_row_that_cannot_be_read_is_skipped_and_counted(db, hasher, embeddings, day):
    db.add([checked(e) for e in day])
    with db.transaction():  # as an older or broken writer might have left it
        db.execute(
            "UPDATE persons SET code = ? WHERE event_id = ?",
            (b"\x01\x02" if db.kind == "sqlite" else "0101", day[4]["event_id"]),
        )
    probe = str(hasher.hash(embeddings["barack_obama/3.jpg"]))
    result = trace.run(db, [probe], STRIDE, SINCE, now=NOW)
    assert result.unreadable == 1 and len(result.sightings) == 2
    assert "1 stored row(s) could not be read" in trace_report(result)


def trace_report(result) -> str:
    from edge.tracer import report

    return report.table(result)


def test_a_database_of_the_previous_version_is_refused_by_trace_and_upgraded_by_the_collector(
    tmp_path, hasher, embeddings, day
):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:  # schema 1, as traceon-edge 0.1 wrote it
        old.executescript(
            "CREATE TABLE sightings (event_id TEXT PRIMARY KEY, site TEXT NOT NULL, checkpoint TEXT NOT NULL, "
            "device TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT NOT NULL, key_id TEXT NOT NULL, "
            "body TEXT NOT NULL); CREATE TABLE persons (event_id TEXT NOT NULL REFERENCES sightings(event_id), "
            "position INTEGER NOT NULL, facehash TEXT NOT NULL, PRIMARY KEY (event_id, position));"
        )
        broken = dict(day[4], persons=[dict(day[4]["persons"][0], facehash="fh1:aaaaaaaa:notbase32!")])
        for e in [*day[:4], broken]:
            old.execute(
                "INSERT INTO sightings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    e["event_id"],
                    e["site"],
                    e["checkpoint"],
                    e["device"],
                    e["started_at"],
                    e["ended_at"],
                    e["key_id"],
                    json.dumps(e),
                ),
            )
    probe = str(hasher.hash(embeddings["barack_obama/3.jpg"]))
    command = [sys.executable, "-m", "edge.cli", "trace", probe, "--db", str(path)]
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 1 and f"traceon-edge upgrade-db --db {path}" in refused.stderr
    upgraded = subprocess.run(
        [sys.executable, "-m", "edge.cli", "upgrade-db", "--db", str(path)], capture_output=True, text=True, check=True
    )
    assert "4 events, 5 person rows (1 unreadable row(s) of an older version skipped)" in upgraded.stdout
    db = store.open_store(str(path))
    result = trace.run(db, [probe], STRIDE, SINCE, now=NOW)
    assert len(result.sightings) == 2 and result.unreadable == 1


def test_retention_deletes_old_events_everywhere_the_codes_are_kept(tmp_path, hasher, embeddings, day, monkeypatch):
    monkeypatch.setattr(store, "SEGMENT_ROWS", 2)  # seal after two rows, so sealed copies are exercised too
    db = store.open_store(str(tmp_path / "s.sqlite"))
    db.add([checked(e) for e in day])
    db.maintain()
    assert db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 3
    cutoff = round((T0 + 60 * 60) * 1000)  # keep what started from 10:00 on: Rose and Lennon
    assert db.forget_before(cutoff) == 3
    assert db.counts() == (2, 2)
    kept = db.execute("SELECT SUM(rows), MIN(min_ms) FROM segments").fetchone()
    assert kept[0] == 2 and kept[1] >= cutoff  # the sealed copies of Rose's and Lennon's codes, nothing older
    everyone = str(hasher.hash(embeddings["rose_leslie/2.jpg"]))
    result = trace.run(db, [everyone], STRIDE, SINCE, now=NOW, max_false=1e6)
    assert {s.row.event_id for s in result.sightings} <= {day[1]["event_id"], day[4]["event_id"]}
    assert result.point.rows == 2


def test_importing_the_tracer_side_loads_no_vision_module():
    """At run time too: every module of core, tracer and field, and the CLI, loads none of the packages the
    import contract forbids them (read from pyproject.toml, so the list is kept in one place)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    heavy = next(c["forbidden_modules"] for c in contracts if "heavy" in c["name"])
    code = (
        "import importlib, pkgutil, sys, edge.cli, edge.core, edge.field, edge.tracer\n"
        "for package in (edge.core, edge.field, edge.tracer):\n"
        "    for m in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r} or m.startswith('edge.unit.vision')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"


def test_a_trace_from_several_facehashes_of_one_person_keeps_the_budget(db, hasher, embeddings, day):
    db.add([checked(e) for e in day])
    codes = [str(hasher.hash(embeddings[f"barack_obama/{n}.jpg"])) for n in (3, 4)]
    result = trace.run(db, codes, STRIDE, SINCE, now=NOW)
    assert result.point.codes == 2 and result.point.expected_false <= 1.0
    assert {s.row.event_id for s in result.sightings} == {day[0]["event_id"], day[3]["event_id"]}
    assert "Trace of 2 FaceHashes of one person" in trace_report(result)
    assert "found: at least" in trace_report(result)
    stranger = str(
        FaceHasher(Key(b"another deployment's key........"), facehash.load_scheme()).hash(
            embeddings["barack_obama/4.jpg"]
        )
    )
    # another key id is another epoch (issue 22): searched with its own code; one that holds no rows is said
    across = trace.run(db, [codes[0], stranger], STRIDE, SINCE, now=NOW)
    assert [e.key_id for e in across.epochs] == [KEY.id, stranger.split(":")[1]]
    assert across.epochs[1].point is None and "no rows of this query stored" in trace_report(across)
    assert {s.row.event_id for s in across.sightings} <= {day[0]["event_id"], day[3]["event_id"]}
    shorter = str(facehash.from_packed(KEY.id, bytes(64), 512, "fh1"))
    with pytest.raises(trace.TraceError, match=f"FaceHashes of key {KEY.id} in one trace must share one length"):
        trace.run(db, [codes[0], shorter], STRIDE, SINCE, now=NOW)


def test_a_trace_of_a_database_that_is_not_there_says_so_and_makes_none(tmp_path, hasher, embeddings):
    missing = tmp_path / "typo.sqlite"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "trace",
            str(hasher.hash(embeddings["barack_obama/1.jpg"])),
            "--db",
            str(missing),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and f"there is no sightings database at {missing}" in result.stderr
    assert not missing.exists()
