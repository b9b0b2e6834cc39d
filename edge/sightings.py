"""The contact tracer's side: store sighting events (idempotent by event id) and trace a FaceHash.

`collect` subscribes to the units' events and stores them; `trace` finds every sighting of one person
(Hamming match under the calibrated threshold, not equality) and every other FaceHash seen at the same
checkpoint within the stride before or after. A SQLite file, or PostgreSQL for many units.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edge import events, facehash
from edge.errors import TraceonError

SCHEMA = """
CREATE TABLE IF NOT EXISTS sightings (
  event_id TEXT PRIMARY KEY, site TEXT NOT NULL, checkpoint TEXT NOT NULL, device TEXT NOT NULL,
  started_at TEXT NOT NULL, ended_at TEXT NOT NULL, key_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
  event_id TEXT NOT NULL REFERENCES sightings(event_id), position INTEGER NOT NULL, facehash TEXT NOT NULL,
  PRIMARY KEY (event_id, position));
CREATE INDEX IF NOT EXISTS sightings_place_time ON sightings (site, checkpoint, started_at);
"""


class TraceError(TraceonError, ValueError):
    """A trace that cannot be run as asked."""


class Store:
    """A SQLite file or a PostgreSQL database behind one small interface (the SQL itself is portable)."""

    def __init__(self, url: str):
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError:
                raise TraceError("a PostgreSQL store needs psycopg: pip install 'traceon-edge[postgres]'") from None
            try:
                self.db = psycopg.connect(url)
            except psycopg.Error as e:
                raise TraceError(f"cannot connect to the database {redacted(url)}: {e}") from None
            self.mark, self.kind = "%s", "postgresql"
        else:
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
            if "://" in path:
                raise TraceError(f"unsupported database URL {url!r}: use a file path, sqlite:///path or postgresql://")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30)
            self.mark, self.kind = "?", "sqlite"
        for attempt in range(3):  # collectors starting together race to create the tables in PostgreSQL
            try:
                with self.transaction():
                    for statement in filter(str.strip, SCHEMA.split(";")):
                        self.execute(statement)
                break
            except Exception:
                if self.kind == "sqlite" or attempt == 2:
                    raise
                time.sleep(0.2)

    def execute(self, sql: str, params: tuple | list = ()):
        return self.db.execute(sql.replace("?", self.mark), params)

    def executemany(self, sql: str, rows: list) -> None:
        self.db.cursor().executemany(sql.replace("?", self.mark), rows)

    @contextlib.contextmanager
    def transaction(self):
        try:
            yield
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def close(self) -> None:
        self.db.close()


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':')[0]}{':***' if ':' in credentials else ''}{at}{host}"


def open_store(url: str) -> Store:
    return Store(url)


def store(db: Store, event: dict) -> bool:
    """Store one event; False if its id was already stored (a retry). Refuses events off the schema."""
    events.validate(event)
    with db.transaction():
        cursor = db.execute(
            "INSERT INTO sightings VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            (
                event["event_id"],
                event["site"],
                event["checkpoint"],
                event["device"],
                event["started_at"],
                event["ended_at"],
                event["key_id"],
                json.dumps(event, sort_keys=True),
            ),
        )
        if cursor.rowcount == 0:
            return False
        db.executemany(
            "INSERT INTO persons VALUES (?, ?, ?)",
            [(event["event_id"], i, p["facehash"]) for i, p in enumerate(event["persons"])],
        )
    return True


def parse_span(text: str) -> datetime.timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].replace(".", "", 1).isdigit():
        raise TraceError(f"{text!r} is not a duration: use a number and s, m, h or d (e.g. 30m, 14d)")
    return datetime.timedelta(**{units[text[-1]]: float(text[:-1])})


@dataclass(frozen=True)
class Row:
    kind: str  # "sighting" of the traced person, or "contact": someone else at the same place and time
    facehash: str
    site: str
    checkpoint: str
    at: str
    distance: float | None  # to the traced FaceHash (sightings only)
    gap_s: float | None  # contacts: seconds from the nearest sighting (negative: before it)


def trace(
    db: Store,
    code: str,
    stride: datetime.timedelta,
    since: datetime.timedelta,
    now: datetime.datetime | None = None,
) -> list[Row]:
    target = facehash.parse(code)
    keys = {k for (k,) in db.execute("SELECT DISTINCT key_id FROM sightings")}
    if target.key_id not in keys:
        held = ", ".join(sorted(keys)) or "none"
        raise TraceError(
            f"this FaceHash was made with key {target.key_id}, but the database holds sightings of key(s) {held}: "
            "FaceHashes of different keys cannot be linked (that is what a key change is for)"
        )
    threshold = facehash.load_scheme()["thresholds"].get(str(len(target.bits)))
    if threshold is None:
        raise TraceError(f"no calibrated threshold for {len(target.bits)}-bit FaceHashes")
    start = ((now or datetime.datetime.now(datetime.UTC)) - since).strftime("%Y-%m-%dT%H:%M:%S")
    rows = db.execute(
        "SELECT p.facehash, s.site, s.checkpoint, s.started_at FROM persons p JOIN sightings s USING (event_id) "
        "WHERE s.key_id = ? AND s.started_at >= ? ORDER BY s.started_at",
        (target.key_id, start),
    ).fetchall()
    found, others = [], []
    for code_text, site, checkpoint, at in rows:
        d = facehash.distance(target, code_text)
        (found if d <= threshold else others).append((code_text, site, checkpoint, at, d))
    result = [Row("sighting", c, s, cp, at, round(d, 4), None) for c, s, cp, at, d in found]
    seen_at: dict[tuple[str, str], list[datetime.datetime]] = {}  # parsed once, not once per contact
    for _, s, cp, at, _ in found:
        seen_at.setdefault((s, cp), []).append(events.parse_utc(at))
    for c, s, cp, at, _ in others:
        moment = events.parse_utc(at)
        gaps = [(moment - f_at).total_seconds() for f_at in seen_at.get((s, cp), [])]
        near = [g for g in gaps if abs(g) <= stride.total_seconds()]
        if near:
            result.append(Row("contact", c, s, cp, at, None, min(near, key=abs)))
    return sorted(result, key=lambda r: (r.at, r.kind))
