"""What another process may read of a unit's outbox file (`traceon-edge status`, tests), without disturbing it.

The file is opened read-only: nothing is written, and in WAL a reader and the daemon's writes go on side by
side, so a running daemon is never blocked. What cannot be read raises sqlite3.Error (no file, not an outbox,
a file the daemon has made but not yet given its tables).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import NamedTuple


class Summary(NamedTuple):
    depth: int  # events waiting in the file
    dropped_full: int  # events dropped because the outbox was full, over the file's life


def _read_only(path: Path, timeout: float) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout))


def summary(path: Path, timeout: float = 2.0) -> Summary:
    """How many events wait in the file, and how many were dropped because it was full."""
    with _read_only(path, timeout) as db:
        depth = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        row = db.execute("SELECT value FROM counters WHERE name = 'dropped_full'").fetchone()
    return Summary(depth, row[0] if row else 0)


def waiting_ids(path: Path, timeout: float = 2.0) -> list[str]:
    """The ids of the events waiting in the file, oldest (the next to be sent) first."""
    with _read_only(path, timeout) as db:
        return [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]
