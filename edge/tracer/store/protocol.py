"""What every engine offers: the Store base (SQL both share, the hooks each fills in) and the values it
returns. An engine is a subclass in a module of its own; opening.py picks it by URL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from edge.core import facehash
from edge.tracer import intake
from edge.tracer.store import coverage
from edge.tracer.store.coverage import Bucket, Checkpoint, Gap, UnitReport

STORED, REPEATED, CONFLICT = "stored", "repeated", "conflict"


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
    scheme: str = "fh1"  # the FaceHash scheme of `code` (a store of schema 4 or older holds fh1 only)

    @property
    def trusted_time(self) -> bool:
        return self.clock in (None, "synchronized", "restamped")

    @property
    def code_text(self) -> str:
        return str(facehash.from_packed(self.key_id, self.code, self.bits, self.scheme))


@dataclass(frozen=True)
class Search:
    hits: list[tuple[int, int]]  # (row id, distance: fh1 Hamming bits, fh2 code units), nearest first
    searched: int  # rows of the scheme, key and length inside the window
    unreadable: int  # rows whose code could not be read, skipped


COLUMNS = "p.id, p.event_id, p.position, p.site, p.checkpoint, e.device, p.started_ms, p.ended_ms, p.key_id, p.bits"
COLUMNS += ", e.clock"

# What `insert` writes, in this order (Store.event_values, Store.person_values): a bulk loader such as
# tools/bench_trace.py writes the same, so that a new column reaches it too.
EVENT_COLUMNS = (
    "event_id",
    "site",
    "checkpoint",
    "device",
    "started_ms",
    "ended_ms",
    "key_id",
    "received_ms",
    "body",
    "clock",
    "faces",
)
PERSON_COLUMNS = (
    "event_id",
    "position",
    "site",
    "checkpoint",
    "started_ms",
    "ended_ms",
    "key_id",
    "bits",
    "code",
    "scheme",
)
BIT_COLUMNS = ("code", "filter")  # written through code_mark (PostgreSQL: bit varying)
HELD_COLUMNS = (
    "site",
    "checkpoint",
    "device",
    "topic",
    "received_ms",
    "started_ms",
    "persons",
    "kind",
    "reason",
    "payload",
)


@dataclass(frozen=True)
class Held:
    """An event set aside by a per-unit limit: kept whole, out of every trace, until released or dropped."""

    unit: tuple[str, str, str]
    topic: str
    started_ms: int | None
    persons: int
    reason: str
    payload: str
    id: int = 0
    received_ms: int = 0

    @property
    def unit_text(self) -> str:
        return "/".join(self.unit)

    @property
    def kind(self) -> str:
        """The limit: persons, cadence, quota or time (a reason starts with it)."""
        return self.reason.partition(":")[0]


class Store:
    """What both backends share; each runs `near` (and its own column types) in its own engine."""

    mark = "?"
    kind = ""

    def __init__(self) -> None:
        self.db = None
        self.schemed = True  # whether `persons` has its `scheme` column (schema 5); prepare() says

    def scheme_of(self, alias: str = "") -> str:
        """SQL for a row's scheme: its column, or 'fh1' in a store of schema 4 or older read as it is."""
        return f"{alias + '.' if alias else ''}scheme" if self.schemed else "'fh1'"

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

    # --- what schema.py creates, checks and upgrades through, in each engine's way ---
    def lock_schema(self) -> None:
        """Collectors that start together must not create or upgrade the tables twice."""

    def tables(self) -> set[str]:
        raise NotImplementedError

    def tables_sql(self) -> str:
        raise NotImplementedError

    def columns(self, table: str) -> set[str]:
        raise NotImplementedError

    def json_int(self, column: str, field: str) -> str:
        """SQL for the integer `field` of the JSON text in `column`."""
        raise NotImplementedError

    # --- writing ---
    def add(self, batch: list[intake.Event], held: list[Held] = (), reports: list[UnitReport] = ()) -> list[str]:
        """Store a batch, the events set aside with it and the units' reports (each only if it changes what
        is stored of its unit), in one transaction; for each event STORED, REPEATED (same id and body) or
        CONFLICT (same id, other content: kept as first stored)."""
        received = now_ms()
        with self.transaction():
            for report in reports:
                coverage.write(self, report)
            for item in held:
                self.execute(
                    f"INSERT INTO held ({', '.join(HELD_COLUMNS)}) VALUES ({', '.join('?' * len(HELD_COLUMNS))})",
                    (
                        *item.unit,
                        item.topic,
                        received,
                        item.started_ms,
                        item.persons,
                        item.kind,
                        item.reason,
                        item.payload,
                    ),
                )
            return [self.insert(event, received) for event in batch]

    def insert(self, event: intake.Event, received_ms: int) -> str:
        marks = ", ".join("?" * len(EVENT_COLUMNS))
        cursor = self.execute(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({marks}) ON CONFLICT (event_id) DO NOTHING",
            self.event_values(event, received_ms),
        )
        if cursor.rowcount == 0:
            (stored,) = self.execute("SELECT body FROM events WHERE event_id = ?", (event.event_id,)).fetchone()
            return REPEATED if stored == event.text else CONFLICT
        rows = self.person_values(event)
        if rows:
            columns = self.person_columns()
            marks = ", ".join(self.code_mark() if column in BIT_COLUMNS else "?" for column in columns)
            self.db.cursor().executemany(
                f"INSERT INTO persons ({', '.join(columns)}) VALUES ({marks})".replace("?", self.mark),
                rows,
            )
        return STORED

    def event_values(self, event: intake.Event, received_ms: int) -> list:
        """The event's row of `events`, in EVENT_COLUMNS."""
        return [
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
            event.body.get("faces"),
        ]

    def person_columns(self) -> tuple[str, ...]:
        """What `insert` writes of each person (PostgreSQL adds fh2's filter bits)."""
        return PERSON_COLUMNS

    def person_values(self, event: intake.Event) -> list[list]:
        """The event's rows of `persons`, in person_columns(), each code as this engine takes it."""
        return [
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
                event.scheme,
            ]
            for i, code in enumerate(event.codes)
        ]

    def code_param(self, code: bytes):
        return code

    def code_mark(self) -> str:
        return "?"

    def forget_before(self, cutoff_ms: int) -> int:
        """Delete every event (and its persons) that started before `cutoff_ms`, and the units' reports made
        before it (each unit's newest kept: its state now); the number of events."""
        with self.transaction():
            self.execute("DELETE FROM persons WHERE started_ms < ?", (cutoff_ms,))
            deleted = self.execute("DELETE FROM events WHERE started_ms < ?", (cutoff_ms,)).rowcount
            self.forget_codes_before(cutoff_ms)
            coverage.forget_before(self, cutoff_ms)
        return deleted

    def forget_codes_before(self, cutoff_ms: int) -> None:
        """Copies of codes kept outside `persons` (SQLite's segments) go too."""

    def maintain(self, lengths: set[tuple[str, str, int]] | None = None) -> None:
        """Periodic upkeep by the collector (SQLite seals segments of these (scheme, key, length); None: all)."""

    # --- what the limits set aside ---
    def held(self, unit: tuple[str, str, str] | None = None, ids: list[int] | None = None) -> list[Held]:
        where, params = ["1 = 1"], []
        if unit is not None:
            where.append("site = ? AND checkpoint = ? AND device = ?")
            params += unit
        if ids is not None:
            where.append(f"id IN ({', '.join('?' * len(ids))})" if ids else "1 = 0")
            params += ids
        rows = self.execute(
            f"SELECT id, {', '.join(HELD_COLUMNS)} FROM held WHERE {' AND '.join(where)} ORDER BY id", params
        ).fetchall()
        return [
            Held((site, cp, dev), topic, started, persons, reason, payload, id=i, received_ms=received)
            for i, site, cp, dev, topic, received, started, persons, _, reason, payload in rows
        ]

    def held_summary(self) -> list[tuple]:
        """Per unit and reason: events, person rows, payload bytes, first and last received."""
        return self.execute(
            "SELECT site, checkpoint, device, kind, COUNT(*), SUM(persons), SUM(LENGTH(payload)), "
            "MIN(received_ms), MAX(received_ms) FROM held GROUP BY site, checkpoint, device, kind "
            "ORDER BY site, checkpoint, device, kind"
        ).fetchall()

    def held_bytes(self, unit: tuple[str, str, str]) -> int:
        found = self.execute(
            "SELECT SUM(LENGTH(payload)) FROM held WHERE site = ? AND checkpoint = ? AND device = ?", unit
        ).fetchone()
        return int(found[0] or 0)

    def drop_held(self, ids: list[int]) -> int:
        dropped = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            dropped += self.execute(f"DELETE FROM held WHERE id IN ({', '.join('?' * len(chunk))})", chunk).rowcount
        return dropped

    def unit_rows(self, unit: tuple[str, str, str], start_ms: int, end_ms: int) -> int:
        """Person rows stored from this unit of events that started in [start_ms, end_ms)."""
        found = self.execute(
            "SELECT COUNT(*) FROM persons p JOIN events e USING (event_id) WHERE e.site = ? AND e.checkpoint = ? "
            "AND e.device = ? AND e.started_ms >= ? AND e.started_ms < ?",
            (*unit, start_ms, end_ms),
        ).fetchone()
        return int(found[0])

    # --- reading ---
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
        limit_for: Callable[[int], int] | None = None,
    ) -> Search:
        """Rows of this scheme, key and length that started inside the window (at these sites; None: all),
        within `max_distance` of any code: fh1 in Hamming bits, fh2 in code units (Euclidean). With
        `limit_for`, an engine that counts the rows before it measures may keep only those within
        limit_for(rows searched) (a trace's operating point), the fewer to fetch."""
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
            f"SELECT {COLUMNS}, {self.scheme_of('p')}, {self.code_select()} FROM persons p JOIN events e "
            f"USING (event_id) WHERE {where} ORDER BY p.started_ms, p.id",
            params,
        ).fetchall()
        readable = ((r, self.code_bytes(r[-1], r[9])) for r in rows)
        return [Row(*r[:-2], code, r[-2]) for r, code in readable if code is not None]

    def code_select(self) -> str:
        return "p.code"

    def code_bytes(self, value, bits: int) -> bytes | None:
        return bytes(value) if isinstance(value, bytes | memoryview) and len(value) * 8 == bits else None

    def keys(self) -> set[str]:
        """Every key id with stored rows (a scan: for messages, not for each trace)."""
        return {k for (k,) in self.execute("SELECT DISTINCT key_id FROM persons").fetchall()}

    def holds(self, key_id: str, bits: int | None = None, scheme: str | None = None) -> bool:
        """Whether any row of this key (and length, and scheme) is stored: one index probe."""
        where, params = ["key_id = ?"], [key_id]
        if bits is not None:
            where.append("bits = ?")
            params.append(bits)
        if scheme is not None:
            where.append(f"{self.scheme_of()} = ?")
            params.append(scheme)
        found = self.execute(f"SELECT 1 FROM persons WHERE {' AND '.join(where)} LIMIT 1", params)
        return found.fetchone() is not None

    def span_of(
        self, scheme: str, key_id: str, bits: int, start_ms: int, end_ms: int, sites: frozenset[str] | None = None
    ) -> tuple[int | None, int | None]:
        """When the first and the last row of this scheme, key and length inside the window started (at these
        sites; None: all): what a trace across epochs says of each epoch it searched."""
        where = f"{self.scheme_of()} = ? AND key_id = ? AND bits = ? AND started_ms BETWEEN ? AND ?"
        params: list = [scheme, key_id, bits, start_ms, end_ms]
        if sites is not None:
            if not sites:
                return None, None
            where += f" AND site IN ({', '.join('?' * len(sites))})"
            params += sorted(sites)
        return tuple(
            self.execute(f"SELECT MIN(started_ms), MAX(started_ms) FROM persons WHERE {where}", params).fetchone()
        )

    def coverage(self) -> tuple[int | None, int | None]:
        """When the oldest and the newest stored event started."""
        return tuple(self.execute("SELECT MIN(started_ms), MAX(started_ms) FROM events").fetchone())

    # --- coverage: the units' statuses and health (coverage.py) ---
    def gaps(
        self,
        since_ms: int,
        until_ms: int,
        sites: frozenset[str] | None = None,
        place: tuple[str, str] | None = None,
    ) -> list[Gap]:
        """Periods overlapping [since_ms, until_ms] when a unit was offline, its camera failing or its clock
        unsynchronised; only at these sites (None: all) or this (site, checkpoint)."""
        return coverage.gaps(self, since_ms, until_ms, sites, place)

    def checkpoints(self, sites: frozenset[str] | None = None) -> list[Checkpoint]:
        """Every checkpoint heard of (events, statuses or health), with its state now."""
        return coverage.checkpoints(self, sites)

    def activity(self, site: str, checkpoint: str, since_ms: int, until_ms: int, bucket_ms: int) -> list[Bucket]:
        """Events, persons, faces and events of an unsynchronised clock per bucket of [since_ms, until_ms)."""
        return coverage.activity(self, site, checkpoint, since_ms, until_ms, bucket_ms)

    def counts(self) -> tuple[int, int]:
        events = self.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        persons = self.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
        return events, persons


def now_ms() -> int:
    return round(time.time() * 1000)
