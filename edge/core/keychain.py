"""Key chains: a FaceHash key that moves forward by itself, epoch by epoch, and never back.

The key of epoch e+1 is a one-way function of the key of epoch e (SP 800-108 KDF with a label of its own), so
every holder of the chain reaches the same key for the same epoch with nothing pushed, and nobody holding
epoch e's key can compute an earlier one. A holder keeps one key in its file, the epoch it has reached, and
overwrites it when it moves on: a stolen unit cannot test the past, and once the tracer's chain has moved
past an epoch nobody can make that epoch's FaceHashes again (cryptographic erasure of its sightings).

Epochs are UTC days (`1d`) or weeks starting Monday 00:00 UTC (`7d`), numbered from 1970-01-05, a Monday.
A plain key file (`traceon-edge keygen PATH`) reads as a chain that never moves: one key for all time.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.core import private_files
from edge.core.errors import KeyFileError
from edge.core.facehash import KEY_BYTES, KEY_HEADER, Key

CHAIN_HEADER = (
    "# traceon-edge FaceHash key chain. Keep it secret and mode 0600. It moves forward by itself each epoch and "
    "overwrites the key it held: never restore an old copy."
)
LENGTHS = {"1d": 86_400, "7d": 7 * 86_400}
ORIGIN = datetime.datetime(1970, 1, 5, tzinfo=datetime.UTC).timestamp()  # a Monday: weeks start on Mondays
STEP_LABEL = "traceon-edge key chain step v1"
_FIELD = re.compile(r"^(epoch-length|epoch|key):\s*(\S+)$")


def step(key: Key) -> Key:
    """The next epoch's key: one-way, so holding it tells nothing of this one."""
    return Key(key.derive(STEP_LABEL, KEY_BYTES))


@dataclass(frozen=True)
class Chain:
    """The key of epoch `epoch` of a chain with epochs `length` long (`length` None: a plain key, one epoch)."""

    key: Key
    length: str | None = None
    epoch: int = 0

    @property
    def moves(self) -> bool:
        return self.length is not None

    def epoch_of(self, seconds: float) -> int:
        """The epoch a moment (Unix time) falls in; a plain key has one epoch, 0."""
        if not self.moves:
            return 0
        return int((seconds - ORIGIN) // LENGTHS[self.length])

    def start_of(self, epoch: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(ORIGIN + epoch * LENGTHS[self.length or "1d"], datetime.UTC)

    def name(self, epoch: int | None = None) -> str:
        """An epoch as a person reads it: its first day (UTC), e.g. `2026-12-04` or `week of 2026-11-30`."""
        if not self.moves:
            return "fixed key"
        day = self.start_of(self.epoch if epoch is None else epoch).date().isoformat()
        return day if self.length == "1d" else f"week of {day}"

    def key_at(self, epoch: int) -> Key:
        """Epoch `epoch`'s key; only this epoch's or a later one's can be made."""
        if not self.moves:
            return self.key
        if epoch < self.epoch:
            raise KeyFileError(
                f"the key of {self.name(epoch)} is gone: this chain has moved on to {self.name()}, and a chain never "
                "goes back (that is what erases the older sightings)"
            )
        key = self.key
        for _ in range(epoch - self.epoch):
            key = step(key)
        return key

    def keys(self, first: int, last: int) -> Iterator[tuple[int, Key]]:
        """(epoch, key) from epoch `first` to `last`, one step each: a window's keys without deriving each
        from the chain's own epoch again."""
        key = self.key_at(first)
        for epoch in range(first, last + 1):
            yield epoch, key
            if epoch < last:
                key = step(key)

    def window(self, since_s: float, now: float) -> tuple[int, int]:
        """The epochs of the last `since_s` seconds that this chain can still make: from the later of its own
        epoch and the epoch of now − since, to now's (at least its own: a clock behind it moves nothing)."""
        first = max(self.epoch, self.epoch_of(now - since_s))
        return first, max(first, self.epoch_of(now))

    def gone(self, since_s: float, now: float) -> str | None:
        """Why the earliest epochs of the last `since_s` seconds cannot be hashed (the chain has moved past
        them), or None."""
        start = self.epoch_of(now - since_s)
        if not self.moves or start >= self.epoch:
            return None
        try:
            self.key_at(start)
        except KeyFileError as e:
            return str(e)
        return None

    def forward(self, epoch: int) -> Chain:
        """This chain at `epoch` (itself when `epoch` is not later)."""
        if not self.moves or epoch <= self.epoch:
            return self
        return Chain(self.key_at(epoch), self.length, epoch)

    def text(self) -> str:
        if not self.moves:
            return f"{KEY_HEADER}\n{self.key.secret.hex()}\n"
        return (
            f"{CHAIN_HEADER}\n# holds the key of {self.name()} (key id {self.key.id})\n"
            f"epoch-length: {self.length}\nepoch: {self.epoch}\nkey: {self.key.secret.hex()}\n"
        )


def parse(text: str, path: Path) -> Chain:
    """A chain file's or a plain key file's text; KeyFileError naming what is wrong."""
    values = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if len(values) == 1 and re.fullmatch(r"[0-9a-f]{64}", values[0]):
        return Chain(Key(bytes.fromhex(values[0])))
    fields = {}
    for line in values:
        match = _FIELD.match(line)
        if match is None or match[1] in fields:
            fields = None
            break
        fields[match[1]] = match[2]
    if (
        fields is None
        or set(fields) != {"epoch-length", "epoch", "key"}
        or fields["epoch-length"] not in LENGTHS
        or not re.fullmatch(r"[0-9]{1,9}", fields["epoch"])
        or not re.fullmatch(r"[0-9a-f]{64}", fields["key"])
    ):
        raise KeyFileError(
            f"{path} is neither a traceon-edge key nor a key chain (expected one line of 64 hex digits, or the lines "
            f"epoch-length: {'|'.join(LENGTHS)}, epoch: N and key: <64 hex digits>); restore it from its source"
        )
    return Chain(Key(bytes.fromhex(fields["key"])), fields["epoch-length"], int(fields["epoch"]))


def load(path: Path) -> Chain:
    """A key or chain file, checked as a secret (edge.core.private_files: mode 0600, owner, folder)."""
    try:
        raw = private_files.read(path, "key file")
    except private_files.PrivateFileError as e:
        fix = f"; create one with `traceon-edge keygen {path}`" if "does not exist" in str(e) else ""
        raise KeyFileError(f"{e}{fix}") from None
    try:
        return parse(raw.decode(), path)
    except UnicodeDecodeError:
        return parse("", path)


def write_new(path: Path, length: str, now: float) -> Chain:
    """A new random chain at `path` holding the epoch of `now`, mode 0600; never overwrites anything."""
    if length not in LENGTHS:
        raise KeyFileError(f"an epoch is {' or '.join(LENGTHS)}, not {length!r}")
    chain = Chain(Key(secrets.token_bytes(KEY_BYTES)), length, 0)
    chain = Chain(chain.key, length, chain.epoch_of(now))
    never = "a key chain is never overwritten (that would unlink every FaceHash made with it). Choose another "
    never += "path, or delete the old one on purpose first"
    private_files.create(path, chain.text().encode(), KeyFileError, "key chain", never)
    return chain


def move_forward(path: Path, held: Chain, epoch: int) -> Chain:
    """Replace the chain file at `path` (holding `held`) with its key of `epoch`, if that is later.

    A new file is written beside it, flushed to disk, then renamed over the old one (a crash leaves one or the
    other, whole); the old file's bytes are overwritten through a handle kept open across the rename, so the
    key it held does not stay behind in a free block of the file system."""
    ahead = held.forward(epoch)
    if ahead is held:
        return held
    temporary = path.with_name(f".{path.name}.new")
    try:
        old = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError as e:
        raise KeyFileError(f"cannot move the key chain {path} forward: {e.strerror}") from None
    try:
        size = os.fstat(old).st_size
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(ahead.text())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
        private_files.sync_folder(path)
        os.pwrite(old, b"\0" * size, 0)
        os.fsync(old)
    except OSError as e:
        with contextlib.suppress(OSError):  # a half-written key must not stay beside the chain
            temporary.unlink()
        raise KeyFileError(f"cannot move the key chain {path} forward: {e.strerror}") from None
    finally:
        os.close(old)
    return ahead
