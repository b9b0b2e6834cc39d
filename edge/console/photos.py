"""Photo traces in the console: whether this host can hash photos, and the unit's in-memory photo query.

The console reaches the unit only here (an import-linter contract says so): a tracer's server may lack the
`[unit]` extra, and then the trace page offers FaceHashes only and says why.
"""

from __future__ import annotations

import functools

from edge.core.errors import TraceonError
from edge.core.facehash import MAX_QUERY_PHOTOS, Key
from edge.unit.photo_query import (  # light: no vision part is imported
    MAX_PHOTO_BYTES,
    PhotoError,
    PhotoQuery,
)

__all__ = ["MAX_PHOTO_BYTES", "MAX_QUERY_PHOTOS", "PhotoError", "PhotoQuery", "PhotosUnavailable"]
__all__ += ["available", "hash_photos"]


class PhotosUnavailable(TraceonError, RuntimeError):
    """A photo trace asked of a host without the unit's vision parts."""


@functools.cache
def available() -> tuple[bool, str]:
    """(True, "") when photos can be hashed here, else (False, why and what to install). Asked once per process."""
    from edge.unit import photo_query

    try:
        photo_query.check_parts()
    except ImportError as e:
        missing = f"{e.name} is missing" if e.name else "its TensorFlow Lite runtime (ai-edge-litert) is missing"
        return False, (
            f"photo traces need the unit's vision parts, and {missing} on this server: install the "
            "[unit] extra (pip install 'traceon-edge[unit]') and restart the console, or paste FaceHashes instead"
        )
    return True, ""


def hash_photos(photos: list[tuple[str, bytes]], keys: list[Key], scheme: str = "fh2") -> PhotoQuery:
    """edge.unit.photo_query.hash_photos: one FaceHash of `scheme` per key, made in memory. PhotosUnavailable
    without the vision parts; PhotoError (a FrameError) naming a photo that cannot be used; FrameError when none
    is left."""
    ok, why = available()
    if not ok:
        raise PhotosUnavailable(why)
    from edge.unit import photo_query

    return photo_query.hash_photos(photos, keys, scheme=scheme)
