"""Choosing a FaceHash scheme by name: fh1 (edge.core.facehash) or fh2 (edge.core.fh2).

Its own module because fh2 builds on facehash's key and rotation: facehash cannot import fh2 back."""

from __future__ import annotations

from edge.core import fh2
from edge.core.facehash import FH2_BYTES, SCHEMES, VERSION, FaceHash, FaceHasher, FaceHashError, Key, parse


def hasher(key: Key, scheme: dict, name: str = VERSION, bits: int | None = None) -> FaceHasher | fh2.Hasher:
    """The hasher of scheme `name` (fh1 or fh2) under `key`; `scheme` is models/facehash.json."""
    if name == "fh2":
        if bits not in (None, 8 * FH2_BYTES):
            raise FaceHashError(f"an fh2 FaceHash is {8 * FH2_BYTES} bits long, not {bits}")
        return fh2.Hasher(key, scheme)
    if name != VERSION:
        raise FaceHashError(f"unknown FaceHash scheme {name!r} (known: {', '.join(SCHEMES)})")
    return FaceHasher(key, scheme, bits)


def rekey(code: FaceHash | str, source: Key, target: Key, model: dict) -> FaceHash:
    """`code` (made with `source`) made again with `target`, of the same scheme and length, from the embedding
    it approximately encodes. Only a holder of both keys can; what it costs in accuracy: docs/KEY_EPOCHS.md."""
    code = parse(code) if isinstance(code, str) else code
    if code.key_id != source.id:
        raise FaceHashError(f"this FaceHash was made with key {code.key_id}, not {source.id}: it cannot be re-keyed")
    bits = len(code.bits) if code.scheme == VERSION else None
    return hasher(target, model, code.scheme, bits).hash(hasher(source, model, code.scheme, bits).estimate(code))
