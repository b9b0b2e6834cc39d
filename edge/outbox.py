"""A durable queue of events in SQLite (WAL): committed before they are sent, deleted after PUBACK.

Power can fail at any moment on a unit: an event is on disk before anyone tries to publish it, and
leaves the disk only when the broker has acknowledged it. On start, whatever is left is sent again,
oldest first, with its original id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from pathlib import Path

from edge.errors import TraceonError

log = logging.getLogger(__name__)


class OutboxError(TraceonError, OSError):
    """The outbox file cannot be opened or written (disk full, read-only, damaged)."""


class Outbox:
    def __init__(self, path: Path, max_events: int, max_bytes: int, when_full: str = "drop_oldest"):
        self.path, self.max_events, self.max_bytes, self.when_full = path, max_events, max_bytes, when_full
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a committed event survives a power cut
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "event_id TEXT UNIQUE NOT NULL, body TEXT NOT NULL)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        except sqlite3.Error as e:
            raise OutboxError(f"cannot open the outbox {path}: {e}") from None

    def put(self, event: dict) -> None:
        """Store an event durably; when full, apply the configured policy (and count it)."""
        body = json.dumps(event, separators=(",", ":"), sort_keys=True)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                dropped = self._make_room(len(body))
                if dropped is None:  # drop_newest: this event gives way
                    self._count("dropped_full", 1)
                    self._db.execute("COMMIT")
                    log.warning("outbox full (%s): dropped the new event %s", self.path, event["event_id"])
                    return
                self._db.execute(
                    "INSERT OR IGNORE INTO events (event_id, body) VALUES (?, ?)", (event["event_id"], body)
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise OutboxError(f"cannot store an event in {self.path}: {e}") from None
            self._changed.notify_all()
        if dropped:
            log.warning("outbox full (%s): dropped the %d oldest event(s)", self.path, dropped)

    def _make_room(self, size: int) -> int | None:
        count, total = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM events").fetchone()
        if count < self.max_events and total + size <= self.max_bytes:
            return 0
        if self.when_full == "drop_newest":
            return None
        dropped = 0
        rows = self._db.execute("SELECT seq, LENGTH(body) FROM events ORDER BY seq").fetchall()
        for seq, length in rows:
            if count < self.max_events and total + size <= self.max_bytes:
                break
            self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
            count, total, dropped = count - 1, total - length, dropped + 1
        self._count("dropped_full", dropped)
        return dropped

    def _count(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, n, n),
        )

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # nothing to undo if the transaction never began
            self._db.execute("ROLLBACK")

    def oldest(self) -> tuple[str, str] | None:
        """(event id, JSON body) of the oldest undelivered event."""
        with self._lock:
            return self._db.execute("SELECT event_id, body FROM events ORDER BY seq LIMIT 1").fetchone()

    def wait(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def delete(self, event_id: str) -> None:
        with self._lock:
            try:
                self._db.execute("DELETE FROM events WHERE event_id = ?", (event_id,))
            except sqlite3.Error as e:
                raise OutboxError(f"cannot remove a delivered event from {self.path}: {e}") from None

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def dropped(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped_full'").fetchone()
            return row[0] if row else 0

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
