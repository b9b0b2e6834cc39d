"""Where sightings are kept: a SQLite file or a PostgreSQL database, behind one interface.

Each event is one row of `events` (its checked JSON body and what it is searched by), each person in it
one row of `persons` with the FaceHash packed into bits. One search method, `near`, runs where the
data is: PostgreSQL XORs `bit varying` codes and counts bits itself; SQLite hands packed codes to NumPy,
sealed into segments of SEGMENT_ROWS codes so that a million rows are a few blobs, not a million
Python objects. Times are milliseconds since 1970 (UTC) in both.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.core import facehash
from edge.core.errors import TraceonError
from edge.tracer import intake

SCHEMA_VERSION = 2
NEVER = 2**62  # the time range of a segment that holds no code

STORED, REPEATED, CONFLICT = "stored", "repeated", "conflict"


class StoreError(TraceonError, ValueError):
    """A store that cannot be opened or used as asked."""


@dataclass(frozen=True)
class Row:
    """One person seen in one event."""

    id: int
    event_id: str
    position: int
    site: str
    checkpoint: str
    device: str
    started_ms: int
    ended_ms: int
    key_id: str
    bits: int
    clock: str | None  # the unit's word on its clock for this event (None: an event of schema 1)
    code: bytes

    @property
    def trusted_time(self) -> bool:
        return self.clock in (None, "synchronized", "restamped")

    @property
    def code_text(self) -> str:
        return str(facehash.from_packed(self.key_id, self.code, self.bits))


@dataclass(frozen=True)
class Search:
    hits: list[tuple[int, int]]  # (row id, Hamming distance in bits), nearest first
    searched: int  # rows of the key and length inside the window
    unreadable: int  # rows whose code could not be read, skipped


COLUMNS = "p.id, p.event_id, p.position, p.site, p.checkpoint, e.device, p.started_ms, p.ended_ms, p.key_id, p.bits"
COLUMNS += ", e.clock"

TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  event_id TEXT PRIMARY KEY, site TEXT NOT NULL, checkpoint TEXT NOT NULL, device TEXT NOT NULL,
  started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL, key_id TEXT NOT NULL, received_ms BIGINT NOT NULL,
  body TEXT NOT NULL, clock TEXT);
CREATE INDEX IF NOT EXISTS events_time ON events (started_ms);
CREATE TABLE IF NOT EXISTS persons (
  id {id}, event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE, position INTEGER NOT NULL,
  site TEXT NOT NULL, checkpoint TEXT NOT NULL, started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL,
  key_id TEXT NOT NULL, bits INTEGER NOT NULL, code {code}, UNIQUE (event_id, position));
CREATE INDEX IF NOT EXISTS persons_place_time ON persons (site, checkpoint, started_ms);
CREATE INDEX IF NOT EXISTS persons_time ON persons (started_ms)
"""


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':')[0]}{':***' if ':' in credentials else ''}{at}{host}"


def open_store(url: str, upgrade: bool = False, create: bool = True) -> Store:
    """A store at `url` (a file path, sqlite:///path or postgresql://…). An older format is upgraded only
    if `upgrade`; otherwise it is refused with the command that upgrades it. A SQLite file that is not
    there is made only if `create` (a reader should not leave an empty database behind a typo)."""
    store: Store
    if url.startswith(("postgresql://", "postgres://")):
        store = PostgresStore(url)
    else:
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
        if "://" in path:
            raise StoreError(f"unsupported database URL {url!r}: use a file path, sqlite:///path or postgresql://")
        if not create and not Path(path).is_file():
            raise StoreError(f"there is no sightings database at {path} (a collector makes it: traceon-edge collect)")
        store = SqliteStore(Path(path))
    try:
        store.prepare(url, upgrade)
    except BaseException:
        store.close()
        raise
    return store


class Store:
    """What both backends share; each runs `near` (and its own column types) in its own engine."""

    mark = "?"
    kind = ""

    def __init__(self) -> None:
        self.db = None

    # --- SQL plumbing ---
    def execute(self, sql: str, params: tuple | list = ()):
        return self.db.execute(sql.replace("?", self.mark), params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            yield
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def meta(self, name: str, default: str | None = None) -> str | None:
        row = self.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def set_meta(self, name: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value)
        )

    # --- opening, creating, upgrading ---
    def prepare(self, url: str, upgrade: bool) -> None:
        with self.transaction():
            self.lock_schema()
            version = self.version()
            if version is None:
                self.create()
            elif version == 1:
                if not upgrade:
                    raise StoreError(
                        f"{redacted(url)} holds sightings in the format of an older traceon-edge (schema 1); "
                        f"upgrade it once with `traceon-edge upgrade-db --db {redacted(url)}` "
                        "(a collector does it by itself when it starts)"
                    )
                self.upgrade_from_1()
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"{redacted(url)} was written by a newer traceon-edge (schema {version}, this one reads "
                    f"{SCHEMA_VERSION}); upgrade traceon-edge"
                )

    def lock_schema(self) -> None:
        """Collectors that start together must not create or upgrade the tables twice."""

    def version(self) -> int | None:
        tables = self.tables()
        if "meta" in tables:
            return int(self.meta("schema_version", "0"))
        return 1 if "sightings" in tables else None

    def create(self) -> None:
        for statement in filter(str.strip, self.tables_sql().split(";")):
            self.execute(statement)
        self.set_meta("schema_version", str(SCHEMA_VERSION))

    def upgrade_from_1(self) -> None:
        """Schema 1 kept FaceHash text; each old event is checked as a new one would be. Those that fail are
        skipped and counted (the trace header reports them)."""
        self.execute("ALTER TABLE persons RENAME TO persons_v1")
        self.execute("ALTER TABLE sightings RENAME TO sightings_v1")
        for index in ("sightings_place_time",):
            self.execute(f"DROP INDEX IF EXISTS {index}")
        self.create()
        skipped = 0
        for (body,) in self.execute("SELECT body FROM sightings_v1").fetchall():
            try:
                self.insert(check_stored(json.loads(body)), received_ms=now_ms())
            except (ValueError, TypeError, KeyError, RecursionError):
                skipped += 1
        self.set_meta("unreadable_rows", str(skipped))
        self.execute("DROP TABLE persons_v1")
        self.execute("DROP TABLE sightings_v1")

    def tables(self) -> set[str]:
        raise NotImplementedError

    def tables_sql(self) -> str:
        raise NotImplementedError

    # --- writing ---
    def add(self, batch: list[intake.Event]) -> list[str]:
        """Store a batch in one transaction; for each event STORED, REPEATED (same id and body) or CONFLICT
        (same id, other content: kept as first stored)."""
        received = now_ms()
        with self.transaction():
            return [self.insert(event, received) for event in batch]

    def insert(self, event: intake.Event, received_ms: int) -> str:
        cursor = self.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            [
                event.event_id,
                event.site,
                event.checkpoint,
                event.device,
                event.started_ms,
                event.ended_ms,
                event.key_id,
                received_ms,
                event.text,
                event.clock,
            ],
        )
        if cursor.rowcount == 0:
            (stored,) = self.execute("SELECT body FROM events WHERE event_id = ?", (event.event_id,)).fetchone()
            return REPEATED if stored == event.text else CONFLICT
        rows = [
            [
                event.event_id,
                i,
                event.site,
                event.checkpoint,
                event.started_ms,
                event.ended_ms,
                event.key_id,
                event.bits,
                self.code_param(code),
            ]
            for i, code in enumerate(event.codes)
        ]
        if rows:
            self.db.cursor().executemany(
                "INSERT INTO persons (event_id, position, site, checkpoint, started_ms, ended_ms, key_id, bits, code) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, {self.code_mark()})".replace("?", self.mark),
                rows,
            )
        return STORED

    def code_param(self, code: bytes):
        return code

    def code_mark(self) -> str:
        return "?"

    def forget_before(self, cutoff_ms: int) -> int:
        """Delete every event (and its persons) that started before `cutoff_ms`; the number of events."""
        with self.transaction():
            self.execute("DELETE FROM persons WHERE started_ms < ?", (cutoff_ms,))
            deleted = self.execute("DELETE FROM events WHERE started_ms < ?", (cutoff_ms,)).rowcount
            self.forget_codes_before(cutoff_ms)
        return deleted

    def forget_codes_before(self, cutoff_ms: int) -> None:
        """Copies of codes kept outside `persons` (SQLite's segments) go too."""

    def maintain(self, lengths: set[tuple[str, int]] | None = None) -> None:
        """Periodic upkeep by the collector (SQLite seals segments of these keys and lengths; None: all)."""

    # --- reading ---
    def near(self, key_id: str, bits: int, codes: list[bytes], max_distance: int, start_ms: int, end_ms: int) -> Search:
        """Rows of this key and length that started inside the window, within `max_distance` bits of any code."""
        raise NotImplementedError

    def rows(self, ids: list[int]) -> list[Row]:
        found = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            found += self.fetch_rows(f"p.id IN ({marks})", chunk)
        return found

    def around(self, key_id: str, site: str, checkpoint: str, start_ms: int, end_ms: int) -> list[Row]:
        """Rows of this key at this checkpoint whose time overlaps [start_ms, end_ms]."""
        return self.fetch_rows(
            "p.site = ? AND p.checkpoint = ? AND p.started_ms BETWEEN ? AND ? AND p.ended_ms >= ? AND p.key_id = ?",
            (site, checkpoint, start_ms - intake.MAX_SPAN_MS, end_ms, start_ms, key_id),
        )

    def fetch_rows(self, where: str, params) -> list[Row]:
        rows = self.execute(
            f"SELECT {COLUMNS}, {self.code_select()} FROM persons p JOIN events e USING (event_id) WHERE {where} "
            "ORDER BY p.started_ms, p.id",
            params,
        ).fetchall()
        readable = ((r, self.code_bytes(r[-1], r[9])) for r in rows)
        return [Row(*r[:-1], code) for r, code in readable if code is not None]

    def code_select(self) -> str:
        return "p.code"

    def code_bytes(self, value, bits: int) -> bytes | None:
        return bytes(value) if isinstance(value, bytes | memoryview) and len(value) * 8 == bits else None

    def keys(self) -> set[str]:
        """Every key id with stored rows (a scan: for messages, not for each trace)."""
        return {k for (k,) in self.execute("SELECT DISTINCT key_id FROM persons").fetchall()}

    def holds(self, key_id: str, bits: int | None = None) -> bool:
        """Whether any row of this key (and length) is stored: one index probe."""
        if bits is None:
            return self.execute("SELECT 1 FROM persons WHERE key_id = ? LIMIT 1", (key_id,)).fetchone() is not None
        found = self.execute("SELECT 1 FROM persons WHERE key_id = ? AND bits = ? LIMIT 1", (key_id, bits))
        return found.fetchone() is not None

    def coverage(self) -> tuple[int | None, int | None]:
        """When the oldest and the newest stored event started."""
        return tuple(self.execute("SELECT MIN(started_ms), MAX(started_ms) FROM events").fetchone())

    def counts(self) -> tuple[int, int]:
        events = self.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        persons = self.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
        return events, persons


def check_stored(body: dict) -> intake.Event:
    """An event read back from a store: checked as the collector checks a new one (its topic aside)."""
    if not isinstance(body, dict):
        raise intake.Refused("not a JSON object")
    intake.check_schema(body)
    return intake.build(body)


def now_ms() -> int:
    return round(time.time() * 1000)


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

    def __init__(self, path: Path):
        super().__init__()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30)
            self.db.execute("PRAGMA journal_mode = WAL")
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the database {path}: {e}") from None
        self.db.execute("PRAGMA synchronous = FULL")  # a PUBACK follows the commit: it must survive a power cut
        self.db.execute("PRAGMA foreign_keys = ON")

    def tables(self) -> set[str]:
        return {name for (name,) in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def tables_sql(self) -> str:
        return TABLES.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", code="BLOB") + ";" + SEGMENTS

    # --- segments: sealed runs of codes, one blob each ---
    def maintain(self, lengths: set[tuple[str, int]] | None = None) -> None:
        if lengths is None:
            lengths = set(self.execute("SELECT DISTINCT key_id, bits FROM persons").fetchall())
        for key_id, bits in lengths:
            while self.seal(key_id, bits):
                pass

    def sealed_up_to(self, key_id: str, bits: int) -> int:
        row = self.execute("SELECT MAX(last_id) FROM segments WHERE key_id = ? AND bits = ?", (key_id, bits))
        return row.fetchone()[0] or 0

    def seal(self, key_id: str, bits: int) -> bool:
        """Seal the oldest SEGMENT_ROWS unsealed rows of this key and length, if there are that many."""
        size = segment_rows()
        with self.transaction():
            self.db.execute("BEGIN IMMEDIATE")
            after = self.sealed_up_to(key_id, bits)
            waiting = self.execute(
                "SELECT COUNT(*) FROM (SELECT 1 FROM persons INDEXED BY persons_key "
                "WHERE key_id = ? AND bits = ? AND id > ? LIMIT ?)",
                (key_id, bits, after, size),
            ).fetchone()[0]
            if waiting < size:
                return False
            rows = self.execute(
                "SELECT id, started_ms, code FROM persons INDEXED BY persons_key "
                "WHERE key_id = ? AND bits = ? AND id > ? ORDER BY id LIMIT ?",
                (key_id, bits, after, size),
            ).fetchall()
            good = [r for r in rows if isinstance(r[2], bytes) and len(r[2]) * 8 == bits]
            self.write_segment(key_id, bits, rows[0][0], rows[-1][0], good)
            if len(good) < len(rows):
                self.set_meta("unreadable_rows", str(int(self.meta("unreadable_rows", "0")) + len(rows) - len(good)))
        return True

    def write_segment(self, key_id: str, bits: int, first: int, last: int, rows: list) -> None:
        """Seal rows first…last; with no readable row it only marks the range sealed (and is never searched)."""
        ids = np.array([r[0] for r in rows], np.int64)
        times = np.array([r[1] for r in rows], np.int64)
        codes = b"".join(r[2] for r in rows)
        low, high = (int(times.min()), int(times.max())) if rows else (NEVER, NEVER)
        self.execute(
            "INSERT INTO segments (key_id, bits, first_id, last_id, min_ms, max_ms, rows, ids, times, codes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
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
            "SELECT id, key_id, bits, first_id, last_id, ids, times, codes FROM segments WHERE min_ms < ?",
            (cutoff_ms,),
        ).fetchall()
        for segment_id, key_id, bits, first, last, ids, times, codes in old:
            self.execute("DELETE FROM segments WHERE id = ?", (segment_id,))
            ids, times = np.frombuffer(ids, np.int64), np.frombuffer(times, np.int64)
            codes = np.frombuffer(codes, np.uint8).reshape(len(ids), bits // 8)
            keep = times >= cutoff_ms
            if keep.any():  # an emptied segment just goes: its rows are gone from persons too
                rows = list(zip(ids[keep].tolist(), times[keep].tolist(), map(bytes, codes[keep]), strict=True))
                self.write_segment(key_id, bits, first, last, rows)

    def near(self, key_id: str, bits: int, codes: list[bytes], max_distance: int, start_ms: int, end_ms: int) -> Search:
        hits: list[tuple[int, int]] = []
        searched = unreadable = 0
        self.db.execute("BEGIN")  # one snapshot: a segment sealed meanwhile is not read twice
        try:
            segments = self.execute(
                "SELECT ids, times, codes FROM segments WHERE key_id = ? AND bits = ? AND max_ms >= ? AND min_ms <= ?",
                (key_id, bits, start_ms, end_ms),
            )
            for ids, times, blob in segments:
                ids, times = np.frombuffer(ids, np.int64), np.frombuffer(times, np.int64)
                inside = (times >= start_ms) & (times <= end_ms)
                block = np.frombuffer(blob, np.uint8).reshape(len(ids), bits // 8)[inside]
                searched += len(block)
                hits += self.matches(ids[inside], hamming(block, codes), max_distance)
            tail = self.execute(
                "SELECT id, code FROM persons INDEXED BY persons_key "
                "WHERE key_id = ? AND bits = ? AND id > ? AND started_ms BETWEEN ? AND ?",
                (key_id, bits, self.sealed_up_to(key_id, bits), start_ms, end_ms),
            ).fetchall()
            good = [(i, c) for i, c in tail if isinstance(c, bytes) and len(c) * 8 == bits]
            unreadable += len(tail) - len(good) + int(self.meta("unreadable_rows", "0"))
            searched += len(good)
            if good:
                block = np.frombuffer(b"".join(c for _, c in good), np.uint8).reshape(len(good), bits // 8)
                hits += self.matches(np.array([i for i, _ in good]), hamming(block, codes), max_distance)
        finally:
            self.db.rollback()
        return Search(sorted(hits, key=lambda h: (h[1], h[0])), searched, unreadable)

    @staticmethod
    def matches(ids: np.ndarray, distances: np.ndarray, max_distance: int) -> list[tuple[int, int]]:
        within = distances <= max_distance
        return list(zip(ids[within].tolist(), distances[within].tolist(), strict=True))


SEGMENTS = """
CREATE TABLE IF NOT EXISTS segments (
  id INTEGER PRIMARY KEY, key_id TEXT NOT NULL, bits INTEGER NOT NULL, first_id INTEGER NOT NULL,
  last_id INTEGER NOT NULL, min_ms INTEGER NOT NULL, max_ms INTEGER NOT NULL, rows INTEGER NOT NULL,
  ids BLOB NOT NULL, times BLOB NOT NULL, codes BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS segments_key_time ON segments (key_id, bits, max_ms);
CREATE INDEX IF NOT EXISTS persons_key ON persons (key_id, bits)
"""  # (key_id, bits) ends in the rowid: the unsealed tail is a range of it


class PostgresStore(Store):
    mark = "%s"
    kind = "postgresql"

    def __init__(self, url: str):
        super().__init__()
        try:
            import psycopg
        except ImportError:
            raise StoreError("a PostgreSQL store needs psycopg: pip install 'traceon-edge[postgres]'") from None
        try:
            self.db = psycopg.connect(url)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to the database {redacted(url)}: {e}") from None

    def lock_schema(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(7431027)")  # any fixed number: one lock for our schema

    def tables(self) -> set[str]:
        rows = self.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {name for (name,) in rows}

    def tables_sql(self) -> str:
        return (
            TABLES.format(id="BIGSERIAL PRIMARY KEY", code="BIT VARYING")
            + ";"
            + ("CREATE INDEX IF NOT EXISTS persons_key_time ON persons (key_id, bits, started_ms)")
        )

    def code_param(self, code: bytes) -> str:
        return "".join(f"{b:08b}" for b in code)

    def code_mark(self) -> str:
        return "CAST(%s AS BIT VARYING)"

    def code_select(self) -> str:
        return "CAST(p.code AS TEXT)"

    def code_bytes(self, value, bits: int) -> bytes | None:
        if not isinstance(value, str) or len(value) != bits or bits % 8:
            return None
        return int(value, 2).to_bytes(bits // 8, "big")

    def near(self, key_id: str, bits: int, codes: list[bytes], max_distance: int, start_ms: int, end_ms: int) -> Search:
        window = "key_id = %s AND bits = %s AND started_ms BETWEEN %s AND %s"
        params = (key_id, bits, start_ms, end_ms)
        bad = "code IS NULL OR length(code) <> bits"
        searched, unreadable = self.execute(
            f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {bad}) FROM persons WHERE {window}",
            params,
        ).fetchone()
        distance = "LEAST(" + ", ".join(["bit_count(code # CAST(%s AS BIT VARYING))"] * len(codes)) + ")"
        try:
            hits = self.execute(
                f"SELECT id, d FROM (SELECT id, {distance} AS d FROM persons WHERE {window} AND length(code) = bits) "
                "AS s WHERE d <= %s ORDER BY d, id",
                [*map(self.code_param, codes), *params, max_distance],
            ).fetchall()
            stored = int(self.meta("unreadable_rows", "0"))
        finally:
            self.db.rollback()  # end the read transaction psycopg opened
        return Search([(int(i), int(d)) for i, d in hits], searched - unreadable, unreadable + stored)
