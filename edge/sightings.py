"""The contact tracer's side: store sighting events (idempotent by event id) and trace a FaceHash.

`collect` subscribes to the units' events and stores them; `trace` finds every sighting of one person
(Hamming match under the calibrated threshold, not equality) and every other FaceHash seen at the same
checkpoint within the stride before or after. SQLite here; the SQL is kept portable.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
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


def open_store(url: str) -> sqlite3.Connection:
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    if "://" in path:
        raise TraceError(f"unsupported database URL {url!r}: use a file path or sqlite:///path")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30)
    db.executescript(SCHEMA)
    return db


def store(db: sqlite3.Connection, event: dict) -> bool:
    """Store one event; False if its id was already stored (a retry). Refuses events off the schema."""
    events.validate(event)
    with db:
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


def _time(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


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
    db: sqlite3.Connection,
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
    for c, s, cp, at, _ in others:
        gaps = [(_time(at) - _time(f_at)).total_seconds() for _, fs, fcp, f_at, _ in found if (fs, fcp) == (s, cp)]
        near = [g for g in gaps if abs(g) <= stride.total_seconds()]
        if near:
            result.append(Row("contact", c, s, cp, at, None, min(near, key=abs)))
    return sorted(result, key=lambda r: (r.at, r.kind))
