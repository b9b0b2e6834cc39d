"""Why a running daemon cannot write its health report, found by looking at its folder the way it would."""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _groups(uid: int) -> list[int]:
    try:
        account = pwd.getpwuid(uid)
    except KeyError:
        return []
    return os.getgrouplist(account.pw_name, account.pw_gid)


def _may_write(st: os.stat_result, uid: int) -> bool:
    """The folder's mode lets `uid` add files (root's override aside: a unit's daemon is not root)."""
    if uid == st.st_uid:
        bits = stat.S_IWUSR | stat.S_IXUSR
    elif st.st_gid in _groups(uid):
        bits = stat.S_IWGRP | stat.S_IXGRP
    else:
        bits = stat.S_IWOTH | stat.S_IXOTH
    return st.st_mode & bits == bits


def why(folder: Path, uid: int) -> str:
    """What keeps the daemon's user `uid` from writing a file in `folder`, in a technician's words."""
    user = _user(uid)
    try:
        fs, st = os.statvfs(folder), os.stat(folder)
    except OSError as e:
        return f"its folder {folder} cannot be looked at ({e.strerror})"
    if fs.f_flag & os.ST_RDONLY:
        return f"the file system holding {folder} is mounted read-only"
    if fs.f_bavail == 0 or fs.f_favail == 0:
        return f"the disk holding {folder} is full"
    if not _may_write(st, uid):
        return f"the folder {folder} is read-only for the daemon's user {user} (mode {stat.S_IMODE(st.st_mode):04o})"
    if os.geteuid() == uid:  # the same user: try it
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".status-probe-"):
                pass
        except OSError as e:
            return f"writing in {folder} fails as user {user}: {e.strerror}"
    return f"{folder} looks writable for user {user} from here: the daemon's log says what fails"
