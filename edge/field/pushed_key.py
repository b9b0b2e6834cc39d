"""A key or key chain file pushed with a config (`deploy --key-file`): put in place, checked, and put back.

The pushed file goes where the pushed config's `facehash.key_file` says. It is checked as the daemon reads it
(keychain.load: a chain or a plain key, mode 0600, owned by the daemon's user, in a folder nobody else can
write) before the config naming it goes live, and everything is undone with the config. The old file's bytes
are kept in memory only, never in a copy on disk (revoking a chain means its bytes must go), and whichever
key ends up unused has its bytes overwritten on disk, as keychain.move_forward does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edge.core import keychain, private_files
from edge.core.errors import KeyFileError

FAR_AHEAD = 10_000  # epochs: a pushed chain more than ~27 years behind the clock is not a chain anyone keeps


@dataclass
class Swap:
    """One key file replaced, with what is needed to undo it."""

    path: Path
    old: bytes | None  # None: there was no file
    old_owner: tuple[int, int, int] | None  # mode, uid, gid
    old_handle: int | None  # the old file's inode, held open so its bytes can be overwritten once it is unused
    new_handle: int | None = None

    def keep(self) -> None:
        """The new key stays: the old one's bytes go."""
        _wipe(self.old_handle)
        _close(self.new_handle)

    def undo(self) -> None:
        """The old file back, byte for byte, with its mode and owner; the new key's bytes go."""
        if self.old is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        else:
            mode, uid, gid = self.old_owner
            _close(write(self.path, self.old, uid, gid, mode))
        _wipe(self.new_handle)
        _close(self.old_handle)


def accepted_ids(text: str, now: float | None = None) -> set[str]:
    """The key ids a daemon running this key or chain may report: a chain moves forward with the clock by
    itself, so any epoch from the one it holds to the clock's next."""
    chain = keychain.parse(text, Path("the pushed key file"))
    if not chain.moves:
        return {chain.key.id}
    last = min(max(chain.epoch, chain.epoch_of(time.time() if now is None else now) + 1), chain.epoch + FAR_AHEAD)
    return {key.id for _, key in chain.keys(chain.epoch, last)}


def daemon_ids(user: str) -> tuple[int, int]:
    """The uid and gid a key file must belong to (this process's when it is not root: it runs as the daemon)."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    account = pwd.getpwnam(user)
    return account.pw_uid, account.pw_gid


def replace(path: Path, content: bytes, user: str) -> Swap | None:
    """Put `content` at `path`, mode 0600, owned by the daemon's user (None: it is there already); KeyFileError,
    nothing changed, if it cannot be."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as e:
        raise KeyFileError(f"cannot look at the key file {path}: {e.strerror}") from None
    old = handle = owner = None
    if info is not None:
        try:
            handle = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        except OSError as e:
            raise KeyFileError(f"cannot read the key file {path} now in place: {e.strerror}") from None
        with os.fdopen(os.dup(handle), "rb") as f:
            old = f.read()
        owner = (info.st_mode & 0o7777, info.st_uid, info.st_gid)
        if old == content:  # already in place: nothing to swap or undo
            _close(handle)
            return None
    uid, gid = daemon_ids(user)
    try:
        new_handle = write(path, content, uid, gid, 0o600)
    except KeyFileError:
        _close(handle)
        raise
    return Swap(path, old, owner, handle, new_handle)


def write(path: Path, content: bytes, uid: int, gid: int, mode: int) -> int:
    """Temporary file beside `path` (created 0600, then owned and moded), fsync, rename, fsync of the folder;
    a handle on the file written, to overwrite its bytes later if it has to go."""
    temporary = path.with_name(f".{path.name}.incoming-{os.getpid()}")
    try:
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise KeyFileError(f"cannot write the key file {path}: {e.strerror}") from None
    try:
        view = memoryview(content)
        while view:  # a write may take less than all of it
            view = view[os.write(fd, view) :]
        if os.geteuid() == 0:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.fsync(fd)
        os.replace(temporary, path)
        private_files.sync_folder(path)
    except OSError as e:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise KeyFileError(f"cannot write the key file {path}: {e.strerror}") from None
    return fd


def check(path: Path, become) -> str | None:
    """None if the daemon's user can load `path` as keychain.load does; else why not. `become`: a preexec
    function that becomes that user (install_config.as_user), None when this process already is it."""
    if become is None:
        try:
            keychain.load(path)
        except KeyFileError as e:
            return str(e)
        return None
    probe = "import sys\nfrom pathlib import Path\nfrom edge.core import keychain\n"
    probe += "try: keychain.load(Path(sys.argv[1]))\nexcept Exception as e: sys.exit(str(e))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, preexec_fn=become, timeout=60, cwd="/"
    )
    if done.returncode == 0:
        return None
    return done.stderr.decode(errors="replace").strip().splitlines()[-1] if done.stderr else f"exit {done.returncode}"


def _wipe(handle: int | None) -> None:
    if handle is None:
        return
    with contextlib.suppress(OSError):
        os.pwrite(handle, b"\0" * os.fstat(handle).st_size, 0)
        os.fsync(handle)
    _close(handle)


def _close(handle: int | None) -> None:
    if handle is not None:
        with contextlib.suppress(OSError):
            os.close(handle)
