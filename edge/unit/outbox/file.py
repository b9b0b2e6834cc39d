"""The outbox's SQLite file: made with its tables, and made again when the disk fails under a unit.

- damaged: the file is moved aside (`<name>.damaged-<time>`), what can be read is carried over into a
  fresh file, and the loss is counted;
- deleted or replaced while running: a new file is made at the path with every waiting event in it.
Each is kept in `faults`, for health.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import sqlite3
from pathlib import Path

from edge.core.errors import OutboxError

log = logging.getLogger(__package__)  # "edge.unit.outbox", as in the log lines before it was a package

DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def sqlite_code(error: sqlite3.Error) -> int:
    """The primary result code of an SQLite error (SQLITE_FULL, SQLITE_CORRUPT, ...)."""
    return getattr(error, "sqlite_errorcode", 0) & 0xFF


def salvage(db: sqlite3.Connection, lookups: int = 200_000) -> list[tuple[str, str]]:
    """The events a damaged file still gives, oldest first: a scan, else one lookup per sequence number
    (a damaged page then costs only the events on it)."""
    with contextlib.suppress(sqlite3.Error):
        return db.execute("SELECT event_id, body FROM events ORDER BY seq").fetchall()
    try:
        (last,) = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone() or (0,)
    except sqlite3.Error:
        return []
    rows = []
    for seq in range(max(1, last - lookups + 1), last + 1):
        with contextlib.suppress(sqlite3.Error):
            row = db.execute("SELECT event_id, body FROM events WHERE seq = ?", (seq,)).fetchone()
            if row:
                rows.append(row)
    return rows


def encode_body(event: dict) -> str:
    """An event as the file keeps it and the broker gets it: compact JSON, keys sorted."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True)


class OutboxFile:
    """The connection to the outbox's file, with the count and size of the events in it, kept usable when the
    file is damaged or deleted; the queue (edge.unit.outbox.queue.Outbox) is built on it and calls it only
    while holding its lock."""

    path: Path
    problem: str  # what is wrong with the outbox now ("" when nothing)
    faults: list[dict]  # damaged or deleted files, most recent last (kept for health)
    _db: sqlite3.Connection | None
    _count: int  # events in the file
    _bytes: int  # the size of their bodies
    _inode: int  # of the file opened: another one at the path means it was deleted or replaced

    def _open(self) -> None:
        try:
            self._connect()
        except sqlite3.DatabaseError as e:
            if sqlite_code(e) not in DAMAGED:
                raise OutboxError(f"cannot open the outbox {self.path}: {e}") from None
            self._quarantine(e, self._salvage_file())

    def _salvage_file(self) -> list[tuple[str, str]]:
        """What can be read from a file too damaged to open for writing."""
        try:  # read-write: a WAL file read-only needs its -shm, and this file is moved aside next anyway
            db = sqlite3.connect(self.path)
        except sqlite3.Error:
            return []
        try:
            return salvage(db)
        finally:
            db.close()

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutboxError(f"cannot make the outbox folder {self.path.parent}: {e.strerror}") from None
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed event survives a power cut
            db.execute(
                "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "event_id TEXT UNIQUE NOT NULL, body TEXT NOT NULL, size INTEGER, mono REAL, boot TEXT)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
            for column, kind in (("size", "INTEGER"), ("mono", "REAL"), ("boot", "TEXT")):  # an older outbox
                if column not in columns:
                    db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
            db.execute("UPDATE events SET size = LENGTH(body) WHERE size IS NULL")
            self._count, self._bytes = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
        except BaseException:
            db.close()
            raise
        self._db, self._inode = db, os.stat(self.path).st_ino

    def _quarantine(self, error: sqlite3.Error, salvaged: list[tuple[str, str]]) -> None:
        """Move a damaged file aside, open a fresh one, carry over what could be read, count the rest."""
        known = getattr(self, "_count", None)
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        moved = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{moved}{suffix}")
        try:
            self._connect()
        except sqlite3.Error as e:
            raise OutboxError(f"the outbox {self.path} was damaged and no new one can be made: {e}") from None
        for event_id, body in salvaged:
            self._insert(event_id, body)
        lost = max(0, known - len(salvaged)) if known is not None else None
        if lost:
            self._bump("lost_damaged", lost)
        fault = {"kind": "damaged", "at": stamp, "moved_to": str(moved), "carried_over": len(salvaged), "lost": lost}
        self.faults = [*self.faults[-4:], fault]
        log.error(
            "the outbox %s was damaged (%s): moved it to %s, carried over %d event(s), %s lost; a fresh outbox "
            "is in use",
            self.path,
            error,
            moved,
            len(salvaged),
            "an unknown number" if lost is None else lost,
        )

    def _salvage(self) -> list[tuple[str, str]]:
        """Every event still readable from a damaged file, oldest first."""
        return salvage(self._db)

    def _still_there(self) -> None:
        """A file deleted or replaced under a running unit: a new one at the path, with every waiting event."""
        try:
            if os.stat(self.path).st_ino == self._inode:
                return
        except FileNotFoundError:
            pass
        except OSError:
            return
        waiting = self._salvage()  # the open connection still reads the deleted file
        old = self._db
        try:
            self._connect()
        except (OutboxError, sqlite3.Error) as e:
            self._db = old
            self.problem = f"the outbox file {self.path} was deleted and cannot be made again ({e}): events wait in "
            self.problem += "the deleted file and are lost if the unit restarts"
            return
        with contextlib.suppress(sqlite3.Error):
            old.close()
        for event_id, body in waiting:
            self._insert(event_id, body)
        fault = {
            "kind": "deleted",
            "at": datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ"),
            "carried_over": len(waiting),
            "lost": 0,
        }
        self.faults = [*self.faults[-4:], fault]
        log.error(
            "the outbox file %s was deleted while running: made a new one with the %d waiting event(s)",
            self.path,
            len(waiting),
        )

    def _guarded(self, action, *args):
        """Run a database action; a damaged file is replaced and the action tried once more."""
        self._still_there()
        try:
            return action(*args)
        except sqlite3.DatabaseError as e:
            if sqlite_code(e) not in DAMAGED:
                raise
            self._quarantine(e, self._salvage())
            return action(*args)

    def _insert(self, event_id: str, body: str, unsynchronized_at: tuple[float, str] | None = None) -> bool:
        mono, boot = unsynchronized_at or (None, None)
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO events (event_id, body, size, mono, boot) VALUES (?, ?, ?, ?, ?)",
            (event_id, body, len(body), mono, boot),
        )
        if cursor.rowcount:
            self._count, self._bytes = self._count + 1, self._bytes + len(body)
        return bool(cursor.rowcount)

    def _bump(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, n, n),
        )

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # nothing to undo if the transaction never began
            self._db.execute("ROLLBACK")
