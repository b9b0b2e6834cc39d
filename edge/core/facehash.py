"""FaceHash: a keyed, revocable, locality-sensitive binary code of a face embedding.

Photos of one person land within a small Hamming distance; without the deployment's key a FaceHash
cannot be linked to a face, an embedding, or the same person's FaceHash under another key.

The code (scheme `fh1`): centre the embedding on a public population mean, rotate it with random
orthogonal matrices derived from the key, and write each rotated coordinate as a thermometer code
(one bit per threshold it exceeds) over evenly spaced thresholds shifted by a key-derived dither.
The Hamming distance of two such codes estimates the L1 distance of the rotated vectors, and L1
averaged over rotations tracks the L2 distance — so codes keep the embedding's own notion of
"same person" (Charikar 2002; Teoh & Ngo 2005; dithered quantisation as in p-stable LSH).

Text form: `fh1:<key id>:<code in base32>`; the key id is an HMAC fingerprint, never the key.

Scheme `fh2` (edge/core/fh2.py) keeps the rotated coordinates themselves at 8 bits and is compared by
Euclidean distance: it keeps the embedding's accuracy at the very low false-accept rates a 1:N trace
needs. Both share the keys, the key id and the text form `<scheme>:<key id>:<code in base32>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from edge.core.errors import FaceHashError, KeyFileError
from edge.core.shipped import models_dir

VERSION = "fh1"
KEY_BYTES = 32
MAX_QUERY_PHOTOS = 4  # a query FaceHash is the mean of up to this many photos: traces are calibrated for that
KEY_HEADER = "# traceon-edge FaceHash key. Keep it secret and mode 0600; a new key unlinks all old FaceHashes."
SCHEMES = ("fh1", "fh2")
FH2_BYTES = 128  # an fh2 code: 128 rotated coordinates, one signed byte each
_TEXT = re.compile(r"^(fh[12]):([a-z2-7]{8}):([a-z2-7]+)$")


# --- keys ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    secret: bytes = field(repr=False)

    @cached_property
    def id(self) -> str:
        """A short public fingerprint: tells keys apart, reveals nothing of the key."""
        digest = hmac.new(self.secret, b"traceon-edge key id v1", hashlib.sha256).digest()
        return base64.b32encode(digest[:5]).decode().lower()

    def derive(self, label: str, size: int) -> bytes:
        """Key-derived bytes for one purpose (NIST SP 800-108 KDF, counter mode, HMAC-SHA256)."""
        out, counter = bytearray(), 1
        while len(out) < size:
            block = counter.to_bytes(4, "big") + label.encode() + b"\x00" + (8 * size).to_bytes(4, "big")
            out += hmac.new(self.secret, block, hashlib.sha256).digest()
            counter += 1
        return bytes(out[:size])


def write_key_file(path: Path) -> Key:
    """A new random key at `path`, mode 0600; refuses to overwrite anything."""
    from edge.core import private_files

    key = Key(secrets.token_bytes(KEY_BYTES))
    never = "a key is never overwritten (that would unlink every FaceHash made with it). Choose another path, or "
    never += "delete the old key on purpose first"
    private_files.create(path, f"{KEY_HEADER}\n{key.secret.hex()}\n".encode(), KeyFileError, "key file", never)
    return key


def load_key(path: Path) -> Key:
    from edge.core import private_files

    fix_new = f"create one with `traceon-edge keygen {path}`"
    try:
        lines = [line.strip() for line in private_files.read(path, "key file").decode().splitlines()]
    except private_files.PrivateFileError as e:
        fix = f"; {fix_new}" if "does not exist" in str(e) else ""
        raise KeyFileError(f"{e}{fix}") from None
    except UnicodeDecodeError:
        lines = []
    values = [line for line in lines if line and not line.startswith("#")]
    if len(values) != 1 or not re.fullmatch(r"[0-9a-f]{64}", values[0]):
        raise KeyFileError(
            f"key file {path} is not a traceon-edge key (expected one line of 64 hex digits); "
            f"restore it from your backup or {fix_new} (a new key unlinks all earlier FaceHashes)"
        )
    return Key(bytes.fromhex(values[0]))


# --- the text form --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceHash:
    key_id: str
    bits: np.ndarray = field(repr=False)  # bool, one per code bit (fh2: its signed bytes' bits)
    scheme: str = "fh1"

    def __str__(self) -> str:
        return encode(self)

    @property
    def packed(self) -> bytes:
        """The code as bytes, 8 bits each: what a store keeps (fh1: XORs; fh2: reads as signed bytes)."""
        return np.packbits(self.bits).tobytes()


def from_packed(key_id: str, data: bytes, bits: int, scheme: str = "fh1") -> FaceHash:
    return FaceHash(key_id, np.unpackbits(np.frombuffer(data, np.uint8), count=bits).astype(bool), scheme)


def encode(code: FaceHash) -> str:
    payload = base64.b32encode(np.packbits(code.bits).tobytes()).decode().rstrip("=").lower()
    return f"{code.scheme}:{code.key_id}:{payload}"


def parse(text: str) -> FaceHash:
    """A FaceHash from its text form, either scheme; anything else is refused with one line that says why."""
    match = _TEXT.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise FaceHashError(f"not a FaceHash: {text!r:.60} (expected fh2:<key id>:<base32 code>, or fh1:…)")
    scheme, key_id, payload = match.groups()
    try:
        raw = base64.b32decode(payload.upper() + "=" * (-len(payload) % 8))
    except ValueError:
        raise FaceHashError(f"not a FaceHash: its code {payload[:16]}… is not valid base32") from None
    if len(base64.b32encode(raw).decode().rstrip("=")) != len(payload):
        raise FaceHashError("not a FaceHash: its code has a stray character at the end")
    if scheme == "fh2":
        if len(raw) != FH2_BYTES:
            raise FaceHashError(f"not a FaceHash: its fh2 code is {len(raw)} bytes long, not {FH2_BYTES}")
        if -128 in np.frombuffer(raw, np.int8):
            raise FaceHashError(
                "not a FaceHash: its fh2 code has a coordinate out of range (-128; codes run -127 … 127)"
            )
    return FaceHash(key_id, np.unpackbits(np.frombuffer(raw, np.uint8)).astype(bool), scheme)


def distance(a: FaceHash | str, b: FaceHash | str) -> float:
    """fh1: normalised Hamming distance, 0 (identical) to 1; fh2: Euclidean distance of the coordinates
    (code units, rounded; fh2.distances). Refuses codes of different schemes, keys or lengths."""
    a = parse(a) if isinstance(a, str) else a
    b = parse(b) if isinstance(b, str) else b
    if a.scheme != b.scheme:
        raise FaceHashError(
            f"these FaceHashes are of different schemes ({a.scheme} and {b.scheme}) and cannot be compared"
        )
    if a.key_id != b.key_id:
        raise FaceHashError(
            f"these FaceHashes come from different keys ({a.key_id} and {b.key_id}) and cannot be compared: "
            "codes from different keys are unlinkable by design"
        )
    if len(a.bits) != len(b.bits):
        raise FaceHashError(f"these FaceHashes have different lengths ({len(a.bits)} and {len(b.bits)} bits)")
    if a.scheme == "fh2":  # exact in integers, so it equals fh2.distances' rounded float32 sum
        diff = np.frombuffer(a.packed, np.int8).astype(np.int64) - np.frombuffer(b.packed, np.int8)
        return float(np.rint(np.sqrt(float(diff @ diff))))
    return float(np.count_nonzero(a.bits != b.bits)) / len(a.bits)


# --- the keyed projection --------------------------------------------------------------------------------


def load_scheme(directory: Path | None = None) -> dict:
    path = (directory or models_dir()) / "facehash.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FaceHashError(f"{path} is missing; reinstall traceon-edge to restore it") from None


def _gaussians(key: Key, label: str, count: int) -> np.ndarray:
    """Standard normal numbers from the key by Box–Muller: the same on every CPU and NumPy version."""
    words = np.frombuffer(key.derive(label, 8 * (count + count % 2)), "<u8")
    u = ((words >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    u1, u2 = u[0::2], u[1::2]
    radius = np.sqrt(-2.0 * np.log(u1))
    return np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])[:count]


def rotation(key: Key, index: int, size: int, scheme: str = VERSION) -> np.ndarray:
    """A random orthogonal matrix from the key (each scheme its own); signs fixed so the QR factorisation is
    unique."""
    q, r = np.linalg.qr(_gaussians(key, f"{scheme} rotation {index}", size * size).reshape(size, size))
    return q * np.sign(np.diag(r))


class FaceHasher:
    """Turns embeddings into FaceHashes under one key. `scheme` is models/facehash.json."""

    scheme = VERSION

    def __init__(self, key: Key, scheme: dict, bits: int | None = None):
        bits = bits or scheme["default_bits"]
        allowed = sorted(int(b) for b in scheme["thresholds"])
        if bits not in allowed:
            lengths = ", ".join(map(str, allowed))
            raise FaceHashError(f"a FaceHash is {lengths} bits long (the calibrated lengths), not {bits}")
        levels = scheme["levels"]
        self.key, self.bits = key, bits
        self.threshold = float(scheme["thresholds"][str(bits)])
        self._mean = np.asarray(scheme["mean"], np.float64)
        size = len(self._mean)
        dims = bits // (levels - 1)
        count = -(-dims // size)
        self._projection = np.concatenate([rotation(key, i, size) for i in range(count)])[:dims]
        step = 2 * scheme["span"] * scheme["scale"] / levels
        self._cuts = (np.arange(1, levels) - levels / 2) * step  # evenly spaced, centred on 0
        dither = np.frombuffer(key.derive(f"{VERSION} dither", 8 * dims), "<u8")
        dither = ((dither >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53 - 0.5
        self._dither = dither * step if levels > 2 else np.zeros(dims)

    def codes(self, embeddings: np.ndarray) -> np.ndarray:
        """Code bits (N × bits, bool) for L2-normalised embeddings (N × 128)."""
        z = (np.atleast_2d(embeddings).astype(np.float64) - self._mean) @ self._projection.T
        return (z[:, :, None] > self._cuts[None, None, :] + self._dither[None, :, None]).reshape(len(z), -1)

    def hash(self, embedding: np.ndarray) -> FaceHash:
        return FaceHash(self.key.id, self.codes(embedding)[0])

    def estimate(self, code: FaceHash) -> np.ndarray:
        """An approximate embedding back from a code of this key (the key holder's re-keying; edge.core.schemes):
        each coordinate the middle of the interval its thermometer level says, rotated back by least squares."""
        levels = self._cuts.size + 1
        step = self._cuts[1] - self._cuts[0] if levels > 2 else 2.0 * abs(self._cuts[0] or 1.0)
        edges = self._cuts[None, :] + self._dither[:, None]  # dims × (levels - 1)
        low = np.concatenate([edges[:, :1] - step, edges], axis=1)
        high = np.concatenate([edges, edges[:, -1:] + step], axis=1)
        level = code.bits.reshape(len(self._dither), levels - 1).sum(1)
        rows = np.arange(len(level))
        z = (low[rows, level] + high[rows, level]) / 2
        x = np.linalg.lstsq(self._projection, z, rcond=None)[0] + self._mean
        return x / np.linalg.norm(x)

    def same_person(self, a: FaceHash | str, b: FaceHash | str) -> bool:
        return distance(a, b) <= self.threshold
