"""The tracer's own key chain: it holds the oldest epoch the collector retains, and moves on with retention.

Every FaceHash a tracer can make from a photo comes from this file (`embed --key-chain`, the console's photo
trace). Moving it forward as retention passes an epoch is what erases that epoch's sightings for good: their
rows are deleted, and any copy of them (a backup of the store) can no longer be tested, because nobody can
make that epoch's key again (edge.core.keychain: the step is one way). A plain key file never moves, so it
cannot do this: the collector refuses one here rather than promise an erasure that would not happen.
"""

from __future__ import annotations

import time
from pathlib import Path

from edge.core import facehash, keychain, schemes
from edge.core.errors import KeyFileError, TraceError
from edge.core.keychain import Chain


def load(path: Path) -> Chain:
    """The tracer's chain at `path`, checked as a secret; KeyFileError for a plain key (it cannot move)."""
    chain = keychain.load(path)
    if not chain.moves:
        raise KeyFileError(
            f"{path} is a plain key, not a key chain: it never moves, so retention could erase nothing with it. "
            "Give the tracer's copy of the deployment's chain (`traceon-edge keygen --epoch 1d|7d`)"
        )
    return chain


def oldest_kept(chain: Chain, retention_s: float, now: float | None = None) -> int:
    """The epoch of (now − retention): the oldest epoch whose sightings are still kept."""
    return chain.epoch_of((time.time() if now is None else now) - retention_s)


def forget(path: Path, retention_s: float, now: float | None = None) -> tuple[Chain, Chain]:
    """Move the chain at `path` forward to the oldest epoch retention keeps; (before, after)."""
    held = load(path)
    return held, keychain.move_forward(path, held, oldest_kept(held, retention_s, now))


def said(path: Path, before: Chain, after: Chain) -> str:
    """What a move did, in one line."""
    if after.epoch == before.epoch:
        return (
            f"the key chain {path} holds {after.name()} (key id {after.key.id}), the oldest epoch kept: nothing to move"
        )
    gone = before.name() if after.epoch - before.epoch == 1 else f"{before.name()} … {after.name(after.epoch - 1)}"
    return (
        f"moved the key chain {path} forward to {after.name()} (key id {after.key.id}): the sightings of {gone} can "
        "no longer be tested from any photo, in this store or any copy of it (their key is gone)"
    )


def over_window(texts: list[str], chain: Chain, since_s: float, now: float | None = None) -> tuple[list[str], dict]:
    """The query `texts` with a FaceHash for every epoch of the window the chain can still make: each epoch the
    query has no code of gets the first key id's codes re-keyed into it (schemes.rekey: the code turned back
    into an approximate embedding and hashed under that epoch's key; docs/KEY_EPOCHS.md measures what that
    costs). (texts, {re-keyed key id: the key id it came from}). How a contact's FaceHash, which belongs to
    its own epoch, is traced over the whole window."""
    now = time.time() if now is None else now
    codes = [facehash.parse(t) for t in texts]
    last = max(chain.epoch, chain.epoch_of(now))
    held = {key.id: key for _, key in chain.keys(chain.epoch, last)}  # each epoch's key, derived once
    source_id = codes[0].key_id
    if source_id not in held:
        raise TraceError(
            f"this FaceHash was made with key {source_id}, which is no epoch this key chain holds "
            f"({chain.name()} to {chain.name(last)}): its epoch is gone (retention moved the chain "
            "past it), or it is another deployment's key. Trace it without --key-chain, in its own epoch only"
        )
    source, given, model = held[source_id], {c.key_id for c in codes}, facehash.load_scheme()
    out, rekeyed = list(texts), {}
    for _, target in chain.keys(*chain.window(since_s, now)):
        if target.id in given:
            continue
        out += [str(schemes.rekey(c, source, target, model)) for c in codes if c.key_id == source_id]
        rekeyed[target.id] = source_id
    return out, rekeyed
