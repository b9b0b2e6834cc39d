"""`trace` reads and never writes (issue 19): it opens the store read-only, refuses a file that holds no
sightings with a reason, and leaves every file it was pointed at as it was, byte for byte."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.data import ROOT
from support.events import SINCE, checked, event_of

from edge.core.errors import StoreError
from edge.tracer import store

QUERY = "fh1:aaaaaaaa:" + "a" * 26  # any well-formed FaceHash: these stores fail before it is read


def trace_cli(db: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "edge.cli", "trace", QUERY, "--db", db, "--since", "14d"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


def contents(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("empty.sqlite", b"", "holds no sightings (an empty file, or another program's database)"),
        ("notes.sqlite", b"a tracer's notes, not a database\n" * 40, "as a sightings database: file is not a database"),
    ],
)
def test_a_file_that_is_not_a_sightings_database_is_refused_and_left_as_it_was(tmp_path, name, data, said):
    path = tmp_path / name
    path.write_bytes(data)
    done = trace_cli(str(path))
    assert done.returncode != 0
    assert said in done.stderr, done.stderr
    assert contents(tmp_path) == {name: data}  # no schema written, no journal left beside it


def test_a_missing_file_is_named_and_not_made(tmp_path):
    done = trace_cli(str(tmp_path / "typo.sqlite"))
    assert done.returncode != 0
    assert f"there is no sightings database at {tmp_path / 'typo.sqlite'}" in done.stderr, done.stderr
    assert contents(tmp_path) == {}


def test_a_store_whose_path_holds_question_marks_and_hashes_is_traced_without_a_change(tmp_path, codes):
    """The read-only URI quotes the path: unquoted, '?' would start its query and '#' its fragment, and
    SQLite would open (or refuse) another file."""
    path = tmp_path / "week?3#campus.sqlite"
    db = store.open_store(str(path))
    db.add([checked(event_of([codes["barack_obama/1.jpg"], codes["joe_biden/1.jpg"]], "library", 0))])
    db.close()
    before = path.read_bytes()
    command = [sys.executable, "-m", "edge.cli", "trace", codes["barack_obama/2.jpg"], "--db", str(path)]
    done = subprocess.run(
        [*command, "--since", f"{int(SINCE.total_seconds())}s"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "1 sighting(s) in 1 visit(s); 1 contact(s)" in done.stdout
    assert path.read_bytes() == before
    assert not (tmp_path / "week").exists()  # what an unquoted '?' would have opened


def test_a_read_only_store_refuses_to_write_on_either_engine(db_url, codes):
    """The store `trace` gets: a write fails in the engine (SQLite mode=ro, PostgreSQL's read-only
    session), and a search still answers."""
    made = store.open_store(db_url)
    made.add([checked(event_of([codes["barack_obama/1.jpg"]], "library", 0))])
    made.close()
    reader = store.open_store(db_url, create=False, read_only=True)
    try:
        assert reader.holds(checked(event_of([codes["barack_obama/1.jpg"]], "library", 0)).key_id)
        with pytest.raises(Exception, match=r"read-only|readonly"):
            reader.set_meta("retention", "1d")
        reader.db.rollback()
        assert reader.meta("retention") is None
    finally:
        reader.close()


def test_a_postgresql_trace_runs_in_a_read_only_session(postgres, codes):
    made = store.open_store(postgres)
    made.add([checked(event_of([codes["barack_obama/1.jpg"], codes["joe_biden/1.jpg"]], "library", 0))])
    made.close()
    command = [sys.executable, "-m", "edge.cli", "trace", codes["barack_obama/2.jpg"], "--db", postgres]
    done = subprocess.run(
        [*command, "--since", f"{int(SINCE.total_seconds())}s"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "1 sighting(s) in 1 visit(s); 1 contact(s)" in done.stdout


def test_an_empty_postgresql_database_is_refused_and_stays_empty(postgres):
    with pytest.raises(StoreError, match="holds no sightings"):
        store.open_store(postgres, create=False, read_only=True)
    import psycopg

    with psycopg.connect(postgres) as raw:
        assert raw.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone() == (0,)
