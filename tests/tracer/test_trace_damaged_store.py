"""A damaged store costs rows, never the trace (issue 19): a sealed SQLite segment whose blobs disagree is
skipped and counted as unreadable rows, and a count in `meta` that is not a number is unknown, said so."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from support.rows import MINUTE, NOW, NOW_MS, code_text, event, flipped, random_codes

from edge.tracer import report, store, trace

STRIDE, SINCE = datetime.timedelta(minutes=30), datetime.timedelta(days=14)


@pytest.fixture
def sealed(tmp_path, monkeypatch):
    """A SQLite store of six rows sealed in three segments of two: the traced person's two sightings are in
    the first and the last segment, strangers fill the rest. Returns the store and the query."""
    monkeypatch.setattr(store, "SEGMENT_ROWS", 2)
    rng = np.random.default_rng(19)
    query, *strangers = random_codes(rng, 5)
    rows = [flipped(query, 10, rng), strangers[0], strangers[1], strangers[2], strangers[3], flipped(query, 12, rng)]
    db = store.open_store(str(tmp_path / "s.sqlite"))
    db.add([event([c], NOW_MS - (60 - i) * MINUTE) for i, c in enumerate(rows)])
    db.maintain()
    assert db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 3
    yield db, code_text(query)
    db.close()


DAMAGE = {
    "codes cut short": "codes = substr(codes, 1, 100)",
    "one id too many": "ids = ids || zeroblob(8)",
    "times of another length": "times = substr(times, 1, 8)",
    "codes not a blob": "codes = 'x'",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_segment_whose_blobs_disagree_is_skipped_and_counted(sealed, damage):
    db, query = sealed
    with db.transaction():
        db.execute(f"UPDATE segments SET {DAMAGE[damage]} WHERE id = (SELECT MIN(id) FROM segments)")
    result = trace.run(db, [query], STRIDE, SINCE, now=NOW)
    assert result.unreadable == 2  # the damaged segment's two rows
    assert result.point.rows == 4
    assert len(result.sightings) == 1  # the sighting in the last segment is still found
    assert "2 stored row(s) could not be read" in report.table(result)


def test_retention_leaves_a_damaged_segment_alone_until_its_rows_are_gone(sealed):
    db, _ = sealed
    with db.transaction():
        db.execute(f"UPDATE segments SET {DAMAGE['codes cut short']}")
    db.forget_before(NOW_MS - 57 * MINUTE - 1)  # the first segment's rows, and one of the second's
    left = db.execute("SELECT first_id, rows FROM segments ORDER BY id").fetchall()
    assert left == [(3, 2), (5, 2)]  # the second is kept whole: its codes cannot be sorted from its times
    db.forget_before(NOW_MS)  # every row is gone: so are the segments
    assert db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 0


def test_a_count_in_meta_that_is_not_a_number_is_unknown_on_either_engine(db):
    rng = np.random.default_rng(7)
    [query] = random_codes(rng, 1)
    db.add([event([flipped(query, 10, rng)], NOW_MS - 60 * MINUTE)])
    with db.transaction():
        db.set_meta("unreadable_rows", "x")
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    assert len(result.sightings) == 1 and result.unreadable == 0
    assert "Note: the store's count of rows it could not read ('x') is not a number: those rows are unknown" in (
        report.table(result)
    )
    assert report.as_dict(result)["notes"] == result.notes


def test_sealing_after_a_damaged_count_counts_again_from_zero(tmp_path, monkeypatch):
    """The collector seals segments: a count it cannot read does not stop it."""
    monkeypatch.setattr(store, "SEGMENT_ROWS", 2)
    rng = np.random.default_rng(8)
    db = store.open_store(str(tmp_path / "s.sqlite"))
    try:
        db.add([event([c], NOW_MS - i * MINUTE) for i, c in enumerate(random_codes(rng, 2))])
        with db.transaction():
            db.set_meta("unreadable_rows", "many")
            db.execute("UPDATE persons SET code = x'00' WHERE id = (SELECT MIN(id) FROM persons)")
        db.maintain()
        assert db.meta("unreadable_rows") == "1"
    finally:
        db.close()
