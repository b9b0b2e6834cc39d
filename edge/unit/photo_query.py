"""A trace query from photos of the index case: one FaceHash per key, made in memory and written nowhere.

The console hands over uploaded bytes; they are decoded from memory (never a temporary file), each photo's one face
is found by the unit's own pipeline, and the quality-weighted mean of the faces that match each other is hashed with
each of the deployment's keys — as `traceon-edge embed --one-person` does, through the same `one_person`.

The module itself imports nothing heavy: the console reads its limits, and asks whether the vision parts are here,
on a host that may lack the `[unit]` extra.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge.core import facehash, schemes
from edge.core.errors import FrameError
from edge.core.facehash import MAX_QUERY_PHOTOS, Key, load_scheme
from edge.core.shown import shown

if TYPE_CHECKING:
    from edge.unit.vision import Face, FacePipeline

MAX_PHOTO_BYTES = 20 * 2**20  # 20 MB: a phone's largest JPEG is a few MB; refused before a byte is decoded
MAX_PHOTO_PIXELS = 50_000_000  # 50 MP: beyond it a photo is a decompression bomb or a scan far larger than needed
FORMATS = ("JPEG", "PNG", "WEBP", "BMP")  # what a camera or a phone exports; no other decoder sees an upload


class PhotoError(FrameError):
    """One uploaded photo that cannot be used; `name` is the file's name as uploaded."""

    def __init__(self, name: str, why: str):
        super().__init__(f"{shown(name)}: {why}")
        self.name, self.why = name, why


@dataclass(frozen=True)
class PhotoQuery:
    codes: dict[str, str]  # key id → FaceHash text
    photos: int  # how many photos the mean holds: the trace's calibration depends on it
    used: list[str]  # the names of those photos
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


@dataclass
class OnePerson:
    """What `one_person` chose: the faces used (best first), their mean embedding, and what it left out."""

    used: list[tuple[str, Face]]
    embedding: np.ndarray | None
    left_out: list[tuple[str, str]]


def one_person(faces: list[tuple[str, Face]], threshold: float) -> OnePerson:
    """The quality-weighted mean of one face per photo, as a burst's person is made.

    Faces too small, blurred or turned away to trust are left out. While a face does not match the mean of the
    others (cosine below `threshold`), the one that matches least is left out and named, so one wrong photo cannot
    turn the query into someone else; of two that disagree, the better photo is kept. At most MAX_QUERY_PHOTOS are
    used (the best by quality: the trace is calibrated for means of up to that many)."""
    from edge.unit.persons import Person, TrustRules, weight

    rules = TrustRules(continuity=False)
    left_out: list[tuple[str, str]] = []
    kept = []
    for name, face in faces:
        if rules.trusts(face):
            kept.append((name, face))
        else:
            left_out.append((name, "the face is too small, blurred or turned away to trust"))
    kept.sort(key=lambda pf: weight(pf[1]), reverse=True)
    while len(kept) > 1:
        fits = []
        for i, (_, face) in enumerate(kept):
            others = Person([(0, f, True) for j, (_, f) in enumerate(kept) if j != i]).embedding
            fits.append(float(face.embedding @ others))
        worst = min(range(len(kept)), key=lambda i: (fits[i], -i))  # a tie (two photos): the weaker one goes
        if fits[worst] >= threshold:
            break
        left_out.append((kept[worst][0], f"does not look like the others (similarity {fits[worst]:.3f})"))
        del kept[worst]
    for name, _ in kept[MAX_QUERY_PHOTOS:]:
        left_out.append((name, f"more than {MAX_QUERY_PHOTOS} photos: kept the best"))
    kept = kept[:MAX_QUERY_PHOTOS]
    mean = Person([(0, f, True) for _, f in kept]).embedding if kept else None
    return OnePerson(kept, mean, left_out)


def hash_photos(photos: list[tuple[str, bytes]], keys: list[Key], scheme: str = "fh2") -> PhotoQuery:
    """One FaceHash of `scheme` (fh1 or fh2) per key from 1 to MAX_QUERY_PHOTOS photos (name, bytes) of one person.

    Raises PhotoError (a FrameError) naming the photo when one is not an image, is truncated, too large, a
    decompression bomb, or shows no face or more than one; FrameError when no photo is left to hash."""
    if not photos:
        raise FrameError("no photo given: upload 1 to 4 photos of the index case")
    if len(photos) > MAX_QUERY_PHOTOS:
        raise FrameError(
            f"{len(photos)} photos given: at most {MAX_QUERY_PHOTOS} can be used (the trace is calibrated for "
            "that many); choose the best ones"
        )
    if not keys:
        raise FrameError("no key file given: a FaceHash needs the deployment's key")
    if scheme not in facehash.SCHEMES:  # the caller's mistake: said before the slow part
        raise ValueError(f"unknown FaceHash scheme {scheme!r} (known: {', '.join(facehash.SCHEMES)})")
    frames = [(name, decode(name, data)) for name, data in photos]  # every photo checked before the slow part
    faces = [(name, _the_face(name, frame)) for name, frame in frames]
    chosen = one_person(faces, _threshold())
    if chosen.embedding is None:
        why = "; ".join(f"{shown(name)}: {reason}" for name, reason in chosen.left_out)
        raise FrameError(f"no photo gave a face to trust ({why}); use sharper, frontal photos of the index case")
    model = load_scheme()
    codes = {key.id: str(schemes.hasher(key, model, scheme).hash(chosen.embedding)) for key in keys}
    return PhotoQuery(codes, len(chosen.used), [name for name, _ in chosen.used], chosen.left_out)


def decode(name: str, data: bytes) -> np.ndarray:
    """A BGR or gray frame from an uploaded file's bytes, decoded in memory."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from edge.unit.vision.frame import check_size
    from edge.unit.vision.media import to_frame

    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoError(
            name, f"the file is {len(data) / 2**20:.0f} MB, more than the {MAX_PHOTO_BYTES // 2**20} MB a photo may be"
        )
    if not data:
        raise PhotoError(name, "the file is empty")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size  # from the header alone
            if width * height > MAX_PHOTO_PIXELS:
                raise PhotoError(
                    name,
                    f"it declares {width}×{height} pixels ({width * height / 1e6:.0f} MP), more than the "
                    f"{MAX_PHOTO_PIXELS // 10**6} MP a photo may have: refused before decoding (a decompression "
                    "bomb, or a scan far larger than a face needs)",
                )
            check_size(width, height)
            return to_frame(ImageOps.exif_transpose(image))  # decodes: a truncated file fails here
    except UnidentifiedImageError:
        raise PhotoError(name, "not a photo (JPEG, PNG, WebP or BMP): the file holds something else") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(name, "a decompression bomb: it would decode to far more pixels than it holds") from None
    except PhotoError:
        raise
    except FrameError as e:  # check_size: too small to hold a face
        raise PhotoError(name, str(e)) from None
    except Exception:  # a decoder's own error on hostile bytes: a person's message, not a traceback
        raise PhotoError(
            name, "the photo is truncated or damaged (was the upload cut short?); upload it again"
        ) from None


def _the_face(name: str, frame: np.ndarray) -> Face:
    with _lock:  # neither the detector, the landmark model nor the interpreter may serve two threads at once
        pipeline = _pipeline()
        found = pipeline.find_faces(frame)
        if len(found) == 1:
            pipeline.embed(found)
    if not found:
        raise PhotoError(name, "no face found: use a photo where the index case's face is frontal and clearly seen")
    if len(found) > 1:
        raise PhotoError(name, f"{len(found)} faces in this photo: crop it to the index case and upload it again")
    return found[0]


_lock = threading.Lock()
_loaded: FacePipeline | None = None


def _pipeline() -> FacePipeline:
    """The unit's pipeline with a unit's defaults (as `embed` sees faces), loaded once per process."""
    global _loaded
    if _loaded is None:
        from edge.unit.vision import FacePipeline, VisionSettings

        _loaded = FacePipeline(VisionSettings())
    return _loaded


def _threshold() -> float:
    with _lock:
        return _pipeline().threshold


def check_parts() -> None:
    """Import every vision part a photo query needs; ImportError (naming it) when one is missing."""
    import cv2  # noqa: F401
    import dlib  # noqa: F401
    import PIL  # noqa: F401

    from edge.unit.vision.embedder import _interpreter_class

    _interpreter_class()  # RuntimeMissingError, an ImportError, without a LiteRT runtime
