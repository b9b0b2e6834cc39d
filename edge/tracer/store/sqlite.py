"""SQLite: one file, codes compared by NumPy (fh1 by Hamming distance, fh2 by Euclidean distance), sealed
into segments of one scheme, key and length each, so that a search reads a few blobs."""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

import numpy as np

from edge.core import fh2
from edge.core.errors import StoreError
from edge.tracer.store.counts import stored_count
from edge.tracer.store.protocol import Search, Store
from edge.tracer.store.schema import TABLES

NEVER = 2**62  # the time range of a segment that holds no code


def segment_rows() -> int:
    """The package's SEGMENT_ROWS, read at each seal: it is the knob (the tests set it small), and the
    package imports this module, so the value cannot be taken once at import."""
    from edge.tracer import store

    return store.SEGMENT_ROWS


def hamming(codes: np.ndarray, queries: list[bytes]) -> np.ndarray:
    """Distance in bits from each packed code (N × bytes) to the nearest query code."""
    words = codes.view(np.uint64) if codes.shape[1] % 8 == 0 else codes
    best = None
    for query in queries:
        q = np.frombuffer(query, np.uint8)
        q = q.view(np.uint64) if codes.shape[1] % 8 == 0 else q
        d = np.bitwise_count(words ^ q).sum(1, dtype=np.int32)
        best = d if best is None else np.minimum(best, d)
    return best


class SqliteStore(Store):
    kind = "sqlite"

    def __init__(self, path: Path, read_only: bool = False):
        super().__init__()
        try:
            if read_only:  # a URI, so that mode=ro holds; quoted, so that a '?' or '#' in the path stays in it
                self.db = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=ro", uri=True, timeout=30)
                self.db.execute("PRAGMA query_only = ON")
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30)
            self.db.execute("PRAGMA journal_mode = WAL")
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the database {path}: {e}") from None
        self.db.execute("PRAGMA synchronous = FULL")  # a PUBACK follows the commit: it must survive a power cut
        self.db.execute("PRAGMA foreign_keys = ON")

    def lock_schema(self) -> None:
        # Python's sqlite3 begins a transaction only before a data change: an ALTER TABLE would commit by
        # itself, and an upgrade that failed half way would leave half a schema
        if not self.db.in_transaction:
            self.db.execute("BEGIN")

    def tables(self) -> set[str]:
        return {name for (name,) in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def tables_sql(self) -> str:
        return TABLES.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", code="BLOB", filter="") + ";" + SEGMENTS

    def add_scheme_columns(self) -> None:
        if "segments" in self.tables() and "scheme" not in self.columns("segments"):
            self.execute("ALTER TABLE segments ADD COLUMN scheme TEXT NOT NULL DEFAULT 'fh1'")
        for old in ("segments_key_time", "persons_key"):  # made again by create(), with the scheme in them
            self.execute(f"DROP INDEX IF EXISTS {old}")

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.execute(f"PRAGMA table_info({table})")}

    def json_int(self, column: str, field: str) -> str:
        return f"CAST(json_extract({column}, '$.{field}') AS INTEGER)"

    # --- segments: sealed runs of codes, one blob each ---
    def maintain(self, lengths: set[tuple[str, str, int]] | None = None) -> None:
        if lengths is None:
            lengths = set(self.execute("SELECT DISTINCT scheme, key_id, bits FROM persons").fetchall())
        for scheme, key_id, bits in lengths:
            while self.seal(scheme, key_id, bits):
                pass

    def sealed_up_to(self, scheme: str, key_id: str, bits: int) -> int:
        row = self.execute(
            f"SELECT MAX(last_id) FROM segments WHERE {self.scheme_of()} = ? AND key_id = ? AND bits = ?",
            (scheme, key_id, bits),
        )
        return row.fetchone()[0] or 0

    def seal(self, scheme: str, key_id: str, bits: int) -> bool:
        """Seal the oldest SEGMENT_ROWS unsealed rows of this scheme, key and length, if there are that many."""
        size = segment_rows()
        with self.transaction():
            self.db.execute("BEGIN IMMEDIATE")
            after = self.sealed_up_to(scheme, key_id, bits)
            waiting = self.execute(
                "SELECT COUNT(*) FROM (SELECT 1 FROM persons INDEXED BY persons_key "
                "WHERE key_id = ? AND bits = ? AND scheme = ? AND id > ? LIMIT ?)",
                (key_id, bits, scheme, after, size),
            ).fetchone()[0]
            if waiting < size:
                return False
            rows = self.execute(
                "SELECT id, started_ms, code FROM persons INDEXED BY persons_key "
                "WHERE key_id = ? AND bits = ? AND scheme = ? AND id > ? ORDER BY id LIMIT ?",
                (key_id, bits, scheme, after, size),
            ).fetchall()
            good = [r for r in rows if isinstance(r[2], bytes) and len(r[2]) * 8 == bits]
            self.write_segment(scheme, key_id, bits, rows[0][0], rows[-1][0], good)
            if len(good) < len(rows):
                known = stored_count(self, "unreadable_rows") or 0  # a damaged count starts again
                self.set_meta("unreadable_rows", str(known + len(rows) - len(good)))
        return True

    def write_segment(self, scheme: str, key_id: str, bits: int, first: int, last: int, rows: list) -> None:
        """Seal rows first…last; with no readable row it only marks the range sealed (and is never searched)."""
        ids = np.array([r[0] for r in rows], np.int64)
        times = np.array([r[1] for r in rows], np.int64)
        codes = b"".join(r[2] for r in rows)
        low, high = (int(times.min()), int(times.max())) if rows else (NEVER, NEVER)
        self.execute(
            "INSERT INTO segments (scheme, key_id, bits, first_id, last_id, min_ms, max_ms, rows, ids, times, codes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                scheme,
                key_id,
                bits,
                first,
                last,
                low,
                high,
                len(rows),
                ids.tobytes(),
                times.tobytes(),
                codes,
            ],
        )

    def forget_codes_before(self, cutoff_ms: int) -> None:
        old = self.execute(
            "SELECT id, scheme, key_id, bits, first_id, last_id, ids, times, codes FROM segments WHERE min_ms < ?",
            (cutoff_ms,),
        ).fetchall()
        for segment_id, scheme, key_id, bits, first, last, ids, times, codes in old:
            arrays = segment_arrays(ids, times, codes, bits)
            if arrays is None:  # unreadable: left as it is (a trace counts it) until all its rows are gone
                self.execute("DELETE FROM segments WHERE id = ? AND max_ms < ?", (segment_id, cutoff_ms))
                continue
            self.execute("DELETE FROM segments WHERE id = ?", (segment_id,))
            ids, times, codes = arrays
            keep = times >= cutoff_ms
            if keep.any():  # an emptied segment just goes: its rows are gone from persons too
                rows = list(zip(ids[keep].tolist(), times[keep].tolist(), map(bytes, codes[keep]), strict=True))
                self.write_segment(scheme, key_id, bits, first, last, rows)

    def near(
        self,
        scheme: str,
        key_id: str,
        bits: int,
        codes: list[bytes],
        max_distance: int,
        start_ms: int,
        end_ms: int,
        sites: frozenset[str] | None = None,
        *,
        limit_for=None,  # every row is measured exactly here: nothing to spare by it
    ) -> Search:
        lengths = (scheme, key_id, bits)
        found = self.near_everywhere(lengths, codes, max_distance, start_ms, end_ms)
        if sites is None:
            return found
        return self.only_at(sites, found, lengths, start_ms, end_ms)

    def only_at(
        self, sites: frozenset[str], found: Search, lengths: tuple[str, str, int], start_ms: int, end_ms: int
    ) -> Search:
        """A search's hits at these sites, and the rows it searched there (segments do not hold sites: the
        rows say; the budget of false sightings is then counted on the rows of these sites only)."""
        if not sites:
            return Search([], 0, found.unreadable)
        marks = ", ".join("?" * len(sites))
        kept: set[int] = set()
        ids = [i for i, _ in found.hits]
        for first in range(0, len(ids), 500):
            chunk = ids[first : first + 500]
            kept |= {
                i
                for (i,) in self.execute(
                    f"SELECT id FROM persons WHERE id IN ({', '.join('?' * len(chunk))}) AND site IN ({marks})",
                    [*chunk, *sorted(sites)],
                )
            }
        scheme, key_id, bits = lengths
        (searched,) = self.execute(
            f"SELECT COUNT(*) FROM persons WHERE {self.scheme_of()} = ? AND key_id = ? AND bits = ? "
            f"AND started_ms BETWEEN ? AND ? AND length(code) * 8 = bits AND site IN ({marks})",
            [scheme, key_id, bits, start_ms, end_ms, *sorted(sites)],
        ).fetchone()
        return Search([h for h in found.hits if h[0] in kept], searched, found.unreadable)

    def near_everywhere(
        self, lengths: tuple[str, str, int], codes: list[bytes], max_distance: int, start_ms: int, end_ms: int
    ) -> Search:
        scheme, key_id, bits = lengths
        measure = fh2.distances if scheme == fh2.NAME else hamming
        hits: list[tuple[int, int]] = []
        searched = unreadable = 0
        self.db.execute("BEGIN")  # one snapshot: a segment sealed meanwhile is not read twice
        try:
            segments = self.execute(
                f"SELECT ids, times, codes, rows FROM segments WHERE {self.scheme_of()} = ? "
                "AND key_id = ? AND bits = ? AND max_ms >= ? AND min_ms <= ?",
                (scheme, key_id, bits, start_ms, end_ms),
            )
            for ids, times, blob, count in segments:
                arrays = segment_arrays(ids, times, blob, bits)
                if arrays is None:  # skipped, and counted by what the segment says it holds
                    unreadable += count if isinstance(count, int) and count > 0 else 0
                    continue
                ids, times, block = arrays
                inside = (times >= start_ms) & (times <= end_ms)
                block = block[inside]
                searched += len(block)
                hits += self.matches(ids[inside], measure(block, codes), max_distance)
            tail = self.execute(
                "SELECT id, code FROM persons INDEXED BY persons_key "
                f"WHERE key_id = ? AND bits = ? AND {self.scheme_of()} = ? AND id > ? AND started_ms BETWEEN ? AND ?",
                (key_id, bits, scheme, self.sealed_up_to(*lengths), start_ms, end_ms),
            ).fetchall()
            good = [(i, c) for i, c in tail if isinstance(c, bytes) and len(c) * 8 == bits]
            unreadable += len(tail) - len(good) + (stored_count(self, "unreadable_rows") or 0)
            searched += len(good)
            if good:
                block = np.frombuffer(b"".join(c for _, c in good), np.uint8).reshape(len(good), bits // 8)
                hits += self.matches(np.array([i for i, _ in good]), measure(block, codes), max_distance)
        finally:
            self.db.rollback()
        return Search(sorted(hits, key=lambda h: (h[1], h[0])), searched, unreadable)

    @staticmethod
    def matches(ids: np.ndarray, distances: np.ndarray, max_distance: int) -> list[tuple[int, int]]:
        within = distances <= max_distance
        return list(zip(ids[within].tolist(), distances[within].tolist(), strict=True))


def segment_arrays(ids, times, codes, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A sealed segment's ids, times and codes (N × bytes), or None if its blobs do not agree (a damaged
    or foreign file): a search skips it rather than fail."""
    if not all(isinstance(b, bytes) for b in (ids, times, codes)) or bits <= 0 or bits % 8:
        return None
    rows = len(ids) // 8
    if len(ids) % 8 or len(times) != len(ids) or len(codes) != rows * (bits // 8):
        return None
    block = np.frombuffer(codes, np.uint8).reshape(rows, bits // 8)
    return np.frombuffer(ids, np.int64), np.frombuffer(times, np.int64), block


SEGMENTS = """
CREATE TABLE IF NOT EXISTS segments (
  id INTEGER PRIMARY KEY, key_id TEXT NOT NULL, bits INTEGER NOT NULL, first_id INTEGER NOT NULL,
  last_id INTEGER NOT NULL, min_ms INTEGER NOT NULL, max_ms INTEGER NOT NULL, rows INTEGER NOT NULL,
  ids BLOB NOT NULL, times BLOB NOT NULL, codes BLOB NOT NULL, scheme TEXT NOT NULL DEFAULT 'fh1');
CREATE INDEX IF NOT EXISTS segments_key_time ON segments (key_id, bits, scheme, max_ms);
CREATE INDEX IF NOT EXISTS persons_key ON persons (key_id, bits, scheme)
"""  # (key_id, bits, scheme) ends in the rowid: the unsealed tail is a range of it; key_id first, so that
# `holds(key_id)` is one probe (schema 4's indexes lacked the scheme: an upgrade makes them again)
