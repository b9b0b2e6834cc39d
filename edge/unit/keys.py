"""The unit's FaceHash key: a key chain file (edge.core.keychain) that moves forward by itself, or a plain key.

A unit's file holds one epoch's key. It moves forward only on a synchronised clock: when a burst taken in a
later epoch is hashed, or (without bursts) once the clock is a grace time past a boundary, so that a burst
taken just before the boundary is still hashed with its own epoch's key. It never moves back: a burst of an
earlier epoch than the file's (a boundary race) and every burst of an unsynchronised clock get the file's key.
Events hashed under an unsynchronised clock and re-stamped later get the key of the epoch they are
re-stamped into (`rekey_restamped`), which needs the file's key: the runtime re-stamps before any move.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge.core import events, keychain, schemes
from edge.core.errors import KeyFileError
from edge.core.facehash import load_scheme

log = logging.getLogger("traceon-edge")

GRACE_S = 300.0  # longer than a burst and its wait for vision: a burst of the old epoch still gets its own key
RETRY_S = 60.0  # after a move that failed (e.g. a read-only folder), the next try: not at every check of the clock


class UnitKeys:
    """The chain this unit holds (its file at `path`), and a hasher for each key it has held since it moved."""

    def __init__(self, path: Path, scheme: str, bits: int, grace_s: float = GRACE_S):
        self.path, self.scheme, self.bits, self.grace_s = path, scheme, bits, grace_s
        self.chain = keychain.load(path)
        # Held by whoever hashes, re-stamps, re-keys or moves: so nothing is re-keyed from a key already gone.
        # Taken before the outbox's own lock, never after it.
        self.lock = threading.RLock()
        # The runtime's re-stamp of waiting events (re-keyed while the file still holds their key); False when
        # it cannot be done now (the clock is not synchronised), and then the file does not move either.
        self.before_move: Callable[[], bool] = lambda: True
        self.rekeyed = 0
        self._failed_at = -RETRY_S  # monotonic time of the last move that failed
        self._model = load_scheme()
        self._hashers: dict[str, object] = {}

    @property
    def hasher(self):
        """The hasher of the key the file holds now."""
        key = self.chain.key
        if key.id not in self._hashers:
            self._hashers = {key.id: schemes.hasher(key, self._model, self.scheme, self.bits)}  # the old key goes
        return self._hashers[key.id]

    def for_burst(self, started: float, synchronized: bool):
        """The hasher for a burst started at `started` (Unix time): its epoch's key if the clock was synchronised
        and that epoch is not earlier than the file's (the file moves forward to it first), else the file's."""
        with self.lock:
            if synchronized:
                self._move_to(self.chain.epoch_of(started))
            return self.hasher

    def catch_up(self, now: float, synchronized: bool) -> None:
        """The clock says `now`: move forward if it is synchronised and a grace time past a later epoch's start."""
        if synchronized and self.chain.moves:
            with self.lock:
                self._move_to(self.chain.epoch_of(now - self.grace_s))

    def rekey_restamped(self, event: dict) -> dict:
        """A re-stamped event, its FaceHashes made again with the key of the epoch it is re-stamped into when that
        is later than the file's (they were made with the file's key, as its clock was not synchronised)."""
        with self.lock:
            chain = self.chain
            epoch = chain.epoch_of(events.parse_utc(event["started_at"]).timestamp())
            if epoch <= chain.epoch:
                return event  # the file's own epoch (or earlier: never back): its codes stand
            if event["key_id"] != chain.key.id:
                log.error(
                    "event %s was hashed with key %s, which this unit no longer holds: it keeps that key id",
                    event["event_id"],
                    event["key_id"],
                )
                return event
            target = chain.key_at(epoch)
            persons = [
                {**p, "facehash": str(schemes.rekey(p["facehash"], chain.key, target, self._model))}
                for p in event["persons"]
            ]
            self.rekeyed += 1
            return {**event, "persons": persons, "key_id": target.id}

    def health(self) -> dict:
        """The key fields of the health report."""
        chain = self.chain
        return {"key_id": chain.key.id, "key_epoch": chain.name(), "epoch_length": chain.length}

    def _move_to(self, epoch: int) -> None:
        if not self.chain.moves or epoch <= self.chain.epoch:
            return  # never back
        if time.monotonic() - self._failed_at < RETRY_S:
            return
        if not self.before_move():  # re-key what waits under the file's key while the file still holds it
            return
        before = self.chain
        try:
            self.chain = keychain.move_forward(self.path, before, epoch)
        except KeyFileError as e:  # events go on under the key it holds: nothing is lost, it tries again later
            self._failed_at = time.monotonic()
            log.error("%s; events keep the key of %s until it can (tried again in %.0f s)", e, before.name(), RETRY_S)
            return
        log.info(
            "the FaceHash key moved forward from %s to %s (key id %s → %s); the old key is overwritten",
            before.name(),
            self.chain.name(),
            before.key.id,
            self.chain.key.id,
        )
