"""FaceHash scheme `fh2`: the keyed rotation of the centred embedding, kept at 8 bits a coordinate.

A unit centres the L2-normalised embedding on the public population mean, rotates it with a random
orthogonal matrix derived from the key (a rotation of its own, not fh1's), and keeps each of the 128
rotated coordinates as a signed byte (-127 … 127, about 32 units a standard deviation). A rotation keeps
distances, and centring moves every embedding alike, so the Euclidean distance of two codes is the
embeddings' own Euclidean distance (for unit vectors, their cosine) up to rounding: fh2 keeps the
embedding's accuracy where a 1:N trace works, at a false-accept rate of 1e-5 and below, where fh1's
thermometer bits lose a third of it (docs/FACEHASH.md). Without the key no coordinate means anything: the
code of one face under two keys is two unrelated rotations.

`filter_bits` is a public, key-free function of a code (a fixed rotation and a dithered thermometer
code of it, 1,024 bits) whose Hamming distance tracks the codes' distance: an engine that cannot take
Euclidean distances itself (PostgreSQL without extensions) keeps only rows within `filter_limit` bits,
then measures those few exactly. The limit is a line fitted on lfw_dev plus six standard deviations of
its scatter, so that no row within the distance is lost (models/facehash.json, tools/compare_schemes.py).
"""

from __future__ import annotations

import hashlib
import math
from functools import cache

import numpy as np

from edge.core.facehash import FH2_BYTES, FaceHash, Key, rotation

NAME = "fh2"
BITS = 8 * FH2_BYTES
LIMIT = 127  # codes are clipped to ±LIMIT: -128 never occurs, so a code's negation is a code too
_FILTER_KEY = Key(hashlib.sha256(b"traceon-edge fh2 filter v1").digest())  # public on purpose: no secret in it


class Hasher:
    """Turns L2-normalised embeddings into fh2 FaceHashes under one key. `scheme` is models/facehash.json."""

    scheme = NAME
    bits = BITS

    def __init__(self, key: Key, scheme: dict):
        self.key = key
        self._mean = np.asarray(scheme["mean"], np.float64)
        self._scale = float(scheme[NAME]["scale"])
        self.threshold = float(scheme[NAME]["threshold"])
        self._rotation = rotation(key, 0, len(self._mean), scheme=NAME)

    def codes(self, embeddings: np.ndarray) -> np.ndarray:
        """Codes (N × 128, int8) of L2-normalised embeddings (N × 128)."""
        z = (np.atleast_2d(embeddings).astype(np.float64) - self._mean) @ self._rotation.T
        return np.clip(np.rint(z * self._scale), -LIMIT, LIMIT).astype(np.int8)

    def hash(self, embedding: np.ndarray) -> FaceHash:
        code = self.codes(embedding)[0].tobytes()
        return FaceHash(self.key.id, np.unpackbits(np.frombuffer(code, np.uint8)).astype(bool), NAME)

    def estimate(self, code: FaceHash) -> np.ndarray:
        """An approximate embedding back from a code of this key (the key holder's re-keying; edge.core.schemes)."""
        x = as_int8(code.packed)[0].astype(np.float64) / self._scale @ self._rotation + self._mean
        return x / np.linalg.norm(x)

    def same_person(self, a: FaceHash | str, b: FaceHash | str) -> bool:
        from edge.core.facehash import distance

        return distance(a, b) <= self.threshold


def as_int8(codes: np.ndarray | bytes) -> np.ndarray:
    """Packed codes (N × 128 bytes, or one code's bytes) as signed coordinates."""
    if isinstance(codes, bytes | bytearray | memoryview):
        return np.frombuffer(bytes(codes), np.int8).reshape(1, FH2_BYTES)
    return np.ascontiguousarray(codes).view(np.int8).reshape(-1, FH2_BYTES)


def distances(codes: np.ndarray, queries: list[bytes], chunk: int = 131_072) -> np.ndarray:
    """Euclidean distance (code units, rounded to an integer) from each code (N × 128 bytes or int8) to the
    nearest query. Float32 sums of integer products stay exact here (at most 128 × 127² < 2^24)."""
    rows = as_int8(codes)
    q = np.concatenate([as_int8(query) for query in queries]).astype(np.float32)
    q_norms = (q * q).sum(1)
    out = np.empty(len(rows), np.int32)
    for first in range(0, len(rows), chunk):
        block = rows[first : first + chunk].astype(np.float32)
        squared = (block * block).sum(1)[:, None] + q_norms[None, :] - 2.0 * (block @ q.T)
        out[first : first + chunk] = np.rint(np.sqrt(np.maximum(squared.min(1), 0.0).astype(np.float64)))
    return out


# --- the public prefilter ------------------------------------------------------------------------------------


@cache
def _filter_parts(levels: int, span: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    step = 2 * span * (LIMIT / 4) / levels  # codes have about LIMIT / 4 units a standard deviation
    cuts = (np.arange(1, levels) - levels / 2) * step
    dither = (_uniform(FH2_BYTES) - 0.5) * step
    return rotation(_FILTER_KEY, 0, FH2_BYTES, scheme="fh2 filter"), cuts, dither


def _uniform(count: int) -> np.ndarray:
    words = np.frombuffer(_FILTER_KEY.derive("fh2 filter dither", 8 * count), "<u8")
    return ((words >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def filter_bits(codes: np.ndarray | bytes, scheme: dict) -> np.ndarray:
    """The prefilter's packed bits (N × 128 bytes) of codes: a thermometer code of a fixed rotation of them."""
    spec = scheme[NAME]["filter"]
    turn, cuts, dither = _filter_parts(int(spec["levels"]), float(spec["span"]))
    z = as_int8(codes).astype(np.float64) @ turn.T
    bits = (z[:, :, None] > cuts[None, None, :] + dither[None, :, None]).reshape(len(z), -1)
    return np.packbits(bits, axis=1)


def filter_limit(distance: int, scheme: dict) -> int:
    """The prefilter's Hamming distance that keeps every row within `distance` (a fitted line + 6 sd)."""
    spec = scheme[NAME]["filter"]
    return math.ceil(spec["slope"] * distance + spec["intercept"] + spec["sigmas"] * spec["sd"])
