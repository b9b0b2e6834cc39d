"""Files that hold secrets (the FaceHash key, an MQTT password, a TLS private key): who may read or replace them.

A secret file must be a regular file (not a symbolic link, a FIFO or a device), owned by the user who
reads it or by root, readable by nobody else (mode 0600 or 0400), in a folder that no other user can
write to: anyone who can write the folder can swap the file for one of their own.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.core.errors import PrivateFileError


def create(path: Path, data: bytes, error: type[Exception], what: str, never: str) -> None:
    """A new secret file at `path`, mode 0600, on disk before this returns; an existing file (or a link) is
    never replaced: `error` says "{path} already exists; {never}"."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise error(f"{path} already exists; {never}") from None
    except OSError as e:
        raise error(f"cannot create {what} {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    sync_folder(path)


def sync_folder(path: Path) -> None:
    """Flush the folder holding `path`, so a file created or renamed there survives a power cut."""
    fd = os.open(Path(path).parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path, what: str) -> bytes:
    """The content of a secret file, read from the very file that was checked (no link, FIFO or swap)."""
    check(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise PrivateFileError(f"cannot read {what} {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        _check_file(path, os.fstat(f.fileno()), what)  # the file opened is the file checked
        return f.read(1 << 20)


def check(path: Path, what: str) -> Path:
    """`path` if it is safe to read as a secret; else PrivateFileError saying what to change."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise PrivateFileError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise PrivateFileError(f"cannot read {what} {path}: {e.strerror}") from None
    _check_file(path, info, what)
    _check_folder(path, what)
    try:  # readable by this user (a pushed config is checked with the daemon user's rights, not root's)
        os.close(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK))
    except OSError as e:
        raise PrivateFileError(f"{what} {path} cannot be read by this user (id {os.geteuid()}): {e.strerror}") from None
    return path


def _check_file(path: Path, info: os.stat_result, what: str) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise PrivateFileError(
            f"{what} {path} is a symbolic link (to {os.readlink(path)}): name the real file in the config, so that "
            "nobody can point the link elsewhere"
        )
    if not stat.S_ISREG(info.st_mode):
        raise PrivateFileError(f"{what} {path} is not a regular file")
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise PrivateFileError(
            f"{what} {path} belongs to user id {info.st_uid}, not to this user ({me}) or root: "
            f"`chown` it to the user that runs traceon-edge"
        )
    if info.st_mode & 0o077:
        raise PrivateFileError(
            f"{what} {path} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"make it private with `chmod 600 {path}`"
        )


def _check_folder(path: Path, what: str) -> None:
    me = os.geteuid()
    folder = path.parent if path.parent != Path("") else Path(".")
    try:
        around = os.stat(folder)
    except OSError as e:
        raise PrivateFileError(f"cannot look at the folder of {what} {path}: {e.strerror}") from None
    if around.st_mode & 0o022 and not around.st_mode & stat.S_ISVTX:
        raise PrivateFileError(
            f"the folder {folder} of {what} {path} can be written by other users (mode "
            f"{stat.S_IMODE(around.st_mode):04o}): they could replace the file; `chmod go-w {folder}`"
        )
    if around.st_uid not in (me, 0):
        raise PrivateFileError(
            f"the folder {folder} of {what} {path} belongs to user id {around.st_uid}: its owner could replace "
            "the file; keep secrets in a folder of root's or of this user's"
        )
