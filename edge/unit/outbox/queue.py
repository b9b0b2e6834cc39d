"""The outbox's queue: events committed before they are sent, deleted after PUBACK, oldest first.

A full disk may not stop a unit or lose an event quietly: an event that cannot be committed is held in
memory (bounded) and still sent, and written as soon as there is room; a delivered event that cannot be
deleted is never sent again and is deleted when there is room.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Collection
from pathlib import Path

from edge.unit.outbox.file import OutboxError, OutboxFile, encode_body, sqlite_code
from edge.unit.outbox.restamp import Restamping

log = logging.getLogger(__package__)  # "edge.unit.outbox", as in the log lines before it was a package

FULL = {13}  # SQLITE_FULL (also what a write to a full or read-only disk can look like: IOERR, READONLY)
NO_ROOM = {8, 10, 13}
HELD_MAX = 1000  # events kept in memory while the disk is full (a few MB at most)
RETRY_S = 2.0  # how often a full disk is tried again
SAY_FULL_EVERY_S = 60.0  # a full outbox drops at every put: say so once a minute, with the count


class Outbox(Restamping, OutboxFile):
    """The queue, on its file (OutboxFile: kept usable when damaged or deleted) with its re-stamping (Restamping)."""

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
        self._rekey = lambda event: event  # see rekey_restamped
        self.problem = ""  # what is wrong with the outbox now ("" when nothing)
        self.faults: list[dict] = []  # damaged or deleted files, most recent last (kept for health)
        with self._lock:
            self._open()

    # --- writing ---
    def put(self, event: dict, unsynchronized_at: tuple[float, str] | None = None) -> None:
        """Store an event durably; when full, apply the configured policy (and count it). A disk with no
        room keeps it in memory, still to be sent, until there is room. `unsynchronized_at`: (monotonic
        time of the event's start, boot id) of an event stamped by a clock not yet synchronised."""
        with self._lock:
            event, unsynchronized_at = self._restamped_if_synced(event, unsynchronized_at)
            body = encode_body(event)
            self._retry_held()
            if self._held:  # keep the order: nothing newer goes to disk before what waits in memory
                self._hold(event["event_id"], body)
            else:
                try:
                    self._guarded(self._put, event["event_id"], body, unsynchronized_at)
                except sqlite3.Error as e:
                    if sqlite_code(e) not in NO_ROOM:
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
            log.warning(
                "outbox full (%s, %s): dropped %d %s event(s) since it last said so (counted in health)",
                self.path,
                self.when_full,
                self._full_unsaid,
                which,
            )
            self._full_said_at, self._full_unsaid = time.monotonic(), 0

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

    # --- reading and delivering ---
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
            if held_back := self._held_back_until_restamped():
                conditions.append(held_back[0])
                params += held_back[1]
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
