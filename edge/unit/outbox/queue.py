"""A durable queue of events in SQLite (WAL): committed before they are sent, deleted after PUBACK.

Power can fail at any moment on a unit: an event is on disk before anyone tries to publish it, and
leaves the disk only when the broker has acknowledged it. On start, whatever is left is sent again,
oldest first, with its original id.

The disk itself can fail a unit too, and none of that may stop it or lose an event quietly:
- full: an event that cannot be committed is held in memory (bounded) and still sent, and written as
  soon as there is room; a delivered event that cannot be deleted is never sent again and is deleted
  when there is room;
- damaged: the file is moved aside (`<name>.damaged-<time>`), what can be read is carried over into a
  fresh file, and the loss is counted;
- deleted or replaced while running: a new file is made at the path with every waiting event in it.
`problem` says what is wrong right now and `faults` what went wrong before, for health.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection
from pathlib import Path

from edge.core import events
from edge.core.errors import TraceonError

log = logging.getLogger(__package__)  # "edge.unit.outbox", as in the log lines before it was a package

DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
FULL = {13}  # SQLITE_FULL (also what a write to a full or read-only disk can look like: IOERR, READONLY)
NO_ROOM = {8, 10, 13}
HELD_MAX = 1000  # events kept in memory while the disk is full (a few MB at most)
RETRY_S = 2.0  # how often a full disk is tried again
SAY_FULL_EVERY_S = 60.0  # a full outbox drops at every put: say so once a minute, with the count


class OutboxError(TraceonError, OSError):
    """The outbox file cannot be opened or written, even after moving a damaged one aside."""


def _code(error: sqlite3.Error) -> int:
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


def _encode(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"), sort_keys=True)


def restamped(event: dict, started_mono: float, wall: float, mono: float) -> dict:
    """The event with times from the monotonic clock, given one synchronised (wall, monotonic) reading."""
    length = events.parse_utc(event["ended_at"]) - events.parse_utc(event["started_at"])
    started = wall - (mono - started_mono)
    return {**event, "started_at": events.utc(started),
            "ended_at": events.utc(started + max(0.0, length.total_seconds())), "clock": "restamped"}  # fmt: skip


class Outbox:
    def __init__(self, path: Path, max_events: int, max_bytes: int, when_full: str = "drop_oldest"):
        self.path, self.max_events, self.max_bytes, self.when_full = path, max_events, max_bytes, when_full
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._db: sqlite3.Connection | None = None
        self._held: collections.OrderedDict[str, str] = collections.OrderedDict()  # not committed (disk full)
        self._undeleted: set[str] = set()  # delivered, but the delete failed: never to be sent again
        self._next_retry = 0.0
        self._full_said_at, self._full_unsaid = -1e9, 0  # when a full outbox was last said; drops since
        self._memory_dropped = 0  # held events dropped because the disk stayed full too long
        self._clock, self._hold_s = None, 0.0  # see hold_unsynchronized
        self._synced_at: tuple[float, float, str] | None = None  # (wall, mono, boot) of the last re-stamp
        self.problem = ""  # what is wrong with the outbox now ("" when nothing)
        self.faults: list[dict] = []  # damaged or deleted files, most recent last (kept for health)
        with self._lock:
            self._open()

    # --- the file ---
    def _open(self) -> None:
        try:
            self._connect()
        except sqlite3.DatabaseError as e:
            if _code(e) not in DAMAGED:
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
            self.path, error, moved, len(salvaged), "an unknown number" if lost is None else lost,
        )  # fmt: skip

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
        fault = {"kind": "deleted", "at": datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ"),
                 "carried_over": len(waiting), "lost": 0}  # fmt: skip
        self.faults = [*self.faults[-4:], fault]
        log.error("the outbox file %s was deleted while running: made a new one with the %d waiting event(s)",
                  self.path, len(waiting))  # fmt: skip

    def _guarded(self, action, *args):
        """Run a database action; a damaged file is replaced and the action tried once more."""
        self._still_there()
        try:
            return action(*args)
        except sqlite3.DatabaseError as e:
            if _code(e) not in DAMAGED:
                raise
            self._quarantine(e, self._salvage())
            return action(*args)

    # --- writing ---
    def put(self, event: dict, unsynchronized_at: tuple[float, str] | None = None) -> None:
        """Store an event durably; when full, apply the configured policy (and count it). A disk with no
        room keeps it in memory, still to be sent, until there is room. `unsynchronized_at`: (monotonic
        time of the event's start, boot id) of an event stamped by a clock not yet synchronised."""
        with self._lock:
            synced = self._synced_at
            if unsynchronized_at and synced and unsynchronized_at[1] == synced[2]:
                # made before the sync, committed after the waiting ones were re-stamped: re-stamp it too
                event, unsynchronized_at = restamped(event, unsynchronized_at[0], synced[0], synced[1]), None
            body = _encode(event)
            self._retry_held()
            if self._held:  # keep the order: nothing newer goes to disk before what waits in memory
                self._hold(event["event_id"], body)
            else:
                try:
                    self._guarded(self._put, event["event_id"], body, unsynchronized_at)
                except sqlite3.Error as e:
                    if _code(e) not in NO_ROOM:
                        raise OutboxError(f"cannot store an event in {self.path}: {e}") from None
                    self._hold(event["event_id"], body)
            self._changed.notify_all()

    def _put(self, event_id: str, body: str, unsynchronized_at: tuple[float, str] | None = None) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            dropped = self._make_room(len(body))
            if dropped is None:  # drop_newest: this event gives way
                self._bump("dropped_full", 1)
                self._db.execute("COMMIT")
                self._say_full(1, "new")
                return
            added = self._insert(event_id, body, unsynchronized_at)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            with contextlib.suppress(sqlite3.Error):  # the counts in memory may have run ahead of the rollback
                self._count, self._bytes = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events"
                ).fetchone()
            raise
        if dropped:
            self._say_full(dropped, "oldest")
        if added and self.problem.startswith("the disk"):
            self.problem = ""

    def _say_full(self, dropped: int, which: str) -> None:
        self._full_unsaid += dropped
        if time.monotonic() - self._full_said_at >= SAY_FULL_EVERY_S:
            log.warning("outbox full (%s, %s): dropped %d %s event(s) since it last said so (counted in health)",
                        self.path, self.when_full, self._full_unsaid, which)  # fmt: skip
            self._full_said_at, self._full_unsaid = time.monotonic(), 0

    def _insert(self, event_id: str, body: str, unsynchronized_at: tuple[float, str] | None = None) -> bool:
        mono, boot = unsynchronized_at or (None, None)
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO events (event_id, body, size, mono, boot) VALUES (?, ?, ?, ?, ?)",
            (event_id, body, len(body), mono, boot),
        )
        if cursor.rowcount:
            self._count, self._bytes = self._count + 1, self._bytes + len(body)
        return bool(cursor.rowcount)

    def _make_room(self, size: int) -> int | None:
        if self._count < self.max_events and self._bytes + size <= self.max_bytes:
            return 0
        if self.when_full == "drop_newest":
            return None
        dropped = 0
        while self._count and not (self._count < self.max_events and self._bytes + size <= self.max_bytes):
            for seq, length in self._db.execute("SELECT seq, size FROM events ORDER BY seq LIMIT 64").fetchall():
                self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
                self._count, self._bytes, dropped = self._count - 1, self._bytes - length, dropped + 1
                if self._count < self.max_events and self._bytes + size <= self.max_bytes:
                    break
        self._bump("dropped_full", dropped)
        return dropped

    def _hold(self, event_id: str, body: str) -> None:
        if event_id in self._held:
            return
        self._held[event_id] = body
        if len(self._held) > HELD_MAX:
            self._held.popitem(last=False)
            self._memory_dropped += 1
        self.problem = (
            f"the disk holding {self.path} is full: {len(self._held)} event(s) wait in memory (still sent) "
            "until there is room"
        )
        if len(self._held) == 1:
            log.error("%s", self.problem)

    def _retry_held(self) -> None:
        """Write held events and delete delivered ones, now that there may be room (at most every RETRY_S)."""
        if not (self._held or self._undeleted) or time.monotonic() < self._next_retry:
            return
        self._next_retry = time.monotonic() + RETRY_S
        try:
            for event_id in list(self._undeleted):
                self._guarded(self._delete, event_id)
                self._undeleted.discard(event_id)
            while self._held:
                event_id, body = next(iter(self._held.items()))
                self._guarded(self._put, event_id, body)
                del self._held[event_id]
        except sqlite3.Error:
            return
        if not self._held and not self._undeleted:
            log.warning("the outbox %s has room again: every waiting event is on disk", self.path)
            self.problem = ""

    def _bump(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, n, n),
        )

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # nothing to undo if the transaction never began
            self._db.execute("ROLLBACK")

    # --- reading and delivering ---
    def hold_unsynchronized(self, clock, seconds: float) -> None:
        """Keep events stamped by an unsynchronised clock back until `restamp` has corrected them, or for
        `seconds` at most if the clock stays unsynchronised."""
        self._clock, self._hold_s = clock, seconds

    def oldest(self) -> tuple[str, str] | None:
        """(event id, JSON body) of the oldest undelivered event: from disk, then from memory."""
        rows = self.oldest_few(1)
        return rows[0] if rows else None

    def oldest_few(self, n: int, skip: Collection[str] = ()) -> list[tuple[str, str]]:
        """Up to n undelivered events, oldest first, leaving out `skip` (those already in flight)."""
        with self._lock:
            self._retry_held()
            left_out = [*self._undeleted, *skip]
            conditions = [f"event_id NOT IN ({','.join('?' * len(left_out))})"] if left_out else []
            params: list = list(left_out)
            clock, hold = self._clock, self._hold_s
            # A row of this boot that still has its monotonic time is not re-stamped yet, even if the clock has
            # just turned synchronised: the daemon re-stamps between bursts. Hold it until then (or `hold` s).
            if clock is not None and hold:
                conditions.append("NOT (mono IS NOT NULL AND boot = ? AND mono > ?)")
                params += [clock.boot, clock.mono() - hold]
            where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            query = f"SELECT event_id, body FROM events {where} ORDER BY seq LIMIT ?"
            try:
                rows = self._guarded(lambda: self._db.execute(query, [*params, n]).fetchall())
            except sqlite3.Error as e:
                raise OutboxError(f"cannot read the outbox {self.path}: {e}") from None
            rows = [tuple(r) for r in rows]
            if len(rows) < n:  # the disk's are older than those waiting in memory for room
                rows += [(i, b) for i, b in self._held.items() if i not in skip][: n - len(rows)]
            return rows

    def restamp(self, wall: float, mono: float, boot: str) -> int:
        """The clock is synchronised now: events of this boot stamped before get times from the monotonic
        clock (`clock: restamped`); those of an earlier boot cannot be and stay `unsynchronized`."""
        with self._lock:
            try:
                rows = self._guarded(
                    lambda: self._db.execute(
                        "SELECT seq, body, mono, boot FROM events WHERE mono IS NOT NULL"
                    ).fetchall()
                )
                fixed = 0
                self._db.execute("BEGIN IMMEDIATE")
                for seq, body, started_mono, started_boot in rows:
                    if started_boot == boot:
                        body = _encode(restamped(json.loads(body), started_mono, wall, mono))
                        fixed += 1
                    self._db.execute(
                        "UPDATE events SET body = ?, size = ?, mono = NULL, boot = NULL WHERE seq = ?",
                        (body, len(body), seq),
                    )
                self._db.execute("COMMIT")
                self._synced_at = (wall, mono, boot)
                self._bytes = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM events").fetchone()[0]
            except sqlite3.Error as e:
                self._rollback()
                log.error("could not re-stamp the waiting events in %s: %s (they go out marked)", self.path, e)
                return 0
            self._changed.notify_all()
            return fixed

    def wait(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def delete(self, event_id: str) -> None:
        """Forget a delivered event. If the disk refuses, it is still never sent again (and deleted later)."""
        with self._lock:
            if self._held.pop(event_id, None) is not None:
                return
            try:
                self._guarded(self._delete, event_id)
            except sqlite3.Error as e:
                self._undeleted.add(event_id)
                self.problem = (
                    f"cannot remove delivered events from {self.path} ({e}): {len(self._undeleted)} kept out of "
                    "sending until it can"
                )
                if len(self._undeleted) == 1:
                    log.error("%s", self.problem)

    def _delete(self, event_id: str) -> None:
        row = self._db.execute("SELECT size FROM events WHERE event_id = ?", (event_id,)).fetchone()
        self._db.execute("DELETE FROM events WHERE event_id = ?", (event_id,))
        if row:
            self._count, self._bytes = self._count - 1, self._bytes - row[0]

    def depth(self) -> int:
        with self._lock:
            return self._count - len(self._undeleted) + len(self._held)

    def counters(self) -> dict[str, int]:
        """Events this outbox gave up: dropped when full, lost to damage, dropped from memory (disk full)."""
        with self._lock:
            try:
                stored = dict(self._guarded(lambda: self._db.execute("SELECT name, value FROM counters").fetchall()))
            except sqlite3.Error:
                stored = {}
        return {
            "dropped_full": stored.get("dropped_full", 0),
            "lost_damaged": stored.get("lost_damaged", 0),
            "dropped_from_memory": self._memory_dropped,
        }

    def dropped(self) -> int:
        return self.counters()["dropped_full"]

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        with self._lock:
            if self._held:
                log.error("stopping with %d event(s) that the full disk never took: they are lost", len(self._held))
            if self._db is not None:
                self._db.close()
                self._db = None
