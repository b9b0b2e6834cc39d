"""The daemon's latest health report, kept in a file beside its outbox.

`status` and `install-config` read it there, with no broker account: on a locked-down broker a unit cannot
read its own topics, and a second login would take its client id.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from edge.core import files


def path_beside(outbox_path: Path) -> Path:
    """Where the daemon keeps its latest health report, beside its outbox: `status` and `install-config`
    read it there, with no broker account (on a locked-down broker a unit cannot read its own topics)."""
    return outbox_path.with_name(f"{outbox_path.stem}.health.json")


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
