"""Reading a small file that someone else may have put there: never blocking, never more than a bound.

A config or a health report path can name a FIFO (opening it waits for a writer, forever), a device
(/dev/zero never ends) or a folder. The file is opened without waiting (O_NONBLOCK), then the opened file
itself is checked (fstat, so it cannot be swapped between the check and the read), and at most `limit`
bytes are read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFDIR: "a folder",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def kind(mode: int) -> str:
    """What a file of this st_mode is, in words: "a folder", "a FIFO (named pipe)"."""
    return "a regular file" if stat.S_ISREG(mode) else KINDS.get(stat.S_IFMT(mode), "a special file")


def read_regular(path: Path, limit: int, what: str, follow_links: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. ValueError says what else `path` is ("a FIFO
    (named pipe), not a regular file") or that it is "larger than <what> can be"; OSError is the system's."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # checked before fdopen, which says only "Is a directory" of a folder
        os.close(fd)
        raise ValueError(f"{kind(mode)}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {what} can be ({limit:,} bytes)")
    return data
