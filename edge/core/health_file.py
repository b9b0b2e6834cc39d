"""The daemon's latest health report, kept in a file beside its outbox.

`status` and `install-config` read it there, with no broker account: on a locked-down broker a unit cannot
read its own topics, and a second login would take its client id.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from edge.core import files

log = logging.getLogger("traceon-edge")


def path_beside(outbox_path: Path) -> Path:
    """Where the daemon keeps its latest health report, beside its outbox: `status` and `install-config`
    read it there, with no broker account (on a locked-down broker a unit cannot read its own topics)."""
    return outbox_path.with_name(f"{outbox_path.stem}.health.json")


def mark_beside(outbox_path: Path) -> Path:
    """The file the daemon holds a lock on while it runs: `status` tells a running daemon that cannot write
    its health report (a read-only folder, a full disk) from one that has stopped."""
    return outbox_path.with_name(f"{outbox_path.stem}.running")


@contextlib.contextmanager
def running_mark(outbox_path: Path) -> Iterator[None]:
    """Hold a shared lock on the mark while the block runs (the kernel drops it if the process dies). Made
    at start, so a folder that turns read-only later still has it; if it cannot be had, the daemon runs on."""
    path = mark_beside(outbox_path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        log.warning("cannot make %s (%s): status will not tell this daemon runs if its health report stops", path, e)
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def running(outbox_path: Path) -> int | None:
    """The user id the running daemon's mark belongs to, if a daemon holds it now; else None."""
    try:
        fd = os.open(mark_beside(outbox_path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.fstat(fd).st_uid
    finally:
        os.close(fd)
    return None


def write(path: Path, report: dict) -> None:
    """Replace the file in one step: a reader never sees half a report. A link planted at the temporary
    name is not followed (O_NOFOLLOW): the daemon writes only its own file."""
    part = path.with_name(path.name + ".part")
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(report, sort_keys=True))
    os.replace(part, path)


def read(path: Path, limit: int = 64 * 1024) -> dict:
    """A health report file, read as hostile: a regular file (a FIFO would block the reader), at most
    `limit` bytes, JSON. OSError or ValueError says what is wrong."""
    report = json.loads(files.read_regular(path, limit, "a health report", follow_links=False))
    if not isinstance(report, dict):
        raise ValueError("not a JSON object")
    return report
