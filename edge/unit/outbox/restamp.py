"""Events stamped by a clock not yet synchronised: once it is, those of this boot still waiting get their times
from the monotonic clock (`clock: restamped`), and until then they are held back from sending."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable

from edge.core import events
from edge.unit.outbox.file import OutboxFile, encode_body

log = logging.getLogger(__package__)  # "edge.unit.outbox", as in the log lines before it was a package


def restamped(event: dict, started_mono: float, wall: float, mono: float) -> dict:
    """The event with times from the monotonic clock, given one synchronised (wall, monotonic) reading."""
    length = events.parse_utc(event["ended_at"]) - events.parse_utc(event["started_at"])
    started = wall - (mono - started_mono)
    return {
        **event,
        "started_at": events.utc(started),
        "ended_at": events.utc(started + max(0.0, length.total_seconds())),
        "clock": "restamped",
    }


class Restamping(OutboxFile):
    """The outbox's re-stamping, on its file. The queue (edge.unit.outbox.queue.Outbox) sets up the state below;
    `restamp` takes its lock, and the queue calls the other two while holding it."""

    _lock: threading.Lock
    _changed: threading.Condition  # on _lock: told when events may be sent
    _clock: object | None  # see hold_unsynchronized
    _hold_s: float
    _synced_at: tuple[float, float, str] | None  # (wall, mono, boot) of the last re-stamp
    _rekey: Callable[[dict], dict]  # see rekey_restamped

    def hold_unsynchronized(self, clock, seconds: float) -> None:
        """Keep events stamped by an unsynchronised clock back until `restamp` has corrected them, or for
        `seconds` at most if the clock stays unsynchronised."""
        self._clock, self._hold_s = clock, seconds

    def rekey_restamped(self, rekey: Callable[[dict], dict]) -> None:
        """Pass each re-stamped event through `rekey` (its FaceHashes to the key of the epoch it now falls in:
        edge.unit.keys). Its caller holds the lock that `rekey` takes, before this outbox's own."""
        self._rekey = rekey

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
                        body = encode_body(self._rekey(restamped(json.loads(body), started_mono, wall, mono)))
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

    def _restamped_if_synced(
        self, event: dict, unsynchronized_at: tuple[float, str] | None
    ) -> tuple[dict, tuple[float, str] | None]:
        """The event to commit, and its `unsynchronized_at` (None once it has been re-stamped)."""
        synced = self._synced_at
        if unsynchronized_at and synced and unsynchronized_at[1] == synced[2]:
            # made before the sync, committed after the waiting ones were re-stamped: re-stamp it too
            return self._rekey(restamped(event, unsynchronized_at[0], synced[0], synced[1])), None
        return event, unsynchronized_at

    def _held_back_until_restamped(self) -> tuple[str, list] | None:
        """The condition on the events table (and its parameters) that keeps back what waits for its re-stamp."""
        clock, hold = self._clock, self._hold_s
        # A row of this boot that still has its monotonic time is not re-stamped yet, even if the clock has
        # just turned synchronised: the daemon re-stamps between bursts. Hold it until then (or `hold` s).
        if clock is not None and hold:
            return "NOT (mono IS NOT NULL AND boot = ? AND mono > ?)", [clock.boot, clock.mono() - hold]
        return None
