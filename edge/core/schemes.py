"""Choosing a FaceHash scheme by name: fh1 (edge.core.facehash) or fh2 (edge.core.fh2).

Its own module because fh2 builds on facehash's key and rotation: facehash cannot import fh2 back."""

from __future__ import annotations

from edge.core import fh2
from edge.core.facehash import FH2_BYTES, SCHEMES, VERSION, FaceHasher, FaceHashError, Key


def hasher(key: Key, scheme: dict, name: str = VERSION, bits: int | None = None) -> FaceHasher | fh2.Hasher:
    """The hasher of scheme `name` (fh1 or fh2) under `key`; `scheme` is models/facehash.json."""
    if name == "fh2":
        if bits not in (None, 8 * FH2_BYTES):
            raise FaceHashError(f"an fh2 FaceHash is {8 * FH2_BYTES} bits long, not {bits}")
        return fh2.Hasher(key, scheme)
    if name != VERSION:
        raise FaceHashError(f"unknown FaceHash scheme {name!r} (known: {', '.join(SCHEMES)})")
    return FaceHasher(key, scheme, bits)
