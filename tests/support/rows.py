"""Stored rows of known codes and times: random 1024-bit FaceHashes (about 512 bits from each other), and
copies of a code with a chosen number of bits flipped, in events checked as the collector checks them."""

from __future__ import annotations

import datetime
import json
import uuid

import numpy as np

from edge.core import events, facehash
from edge.core.facehash import Key
from edge.tracer import intake

KEY_ID = Key(b"issue 19 tests: a key of theirs.").id
BITS = 1024
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
NOW = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)  # the traces' `now`
NOW_MS = round(NOW.timestamp() * 1000)
MINUTE = 60_000


def stamp(ms: int) -> str:
    return (EPOCH + datetime.timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def code_text(code: bytes) -> str:
    return str(facehash.from_packed(KEY_ID, code, BITS))


def random_codes(rng: np.random.Generator, n: int) -> list[bytes]:
    return [bytes(c) for c in rng.integers(0, 256, (n, BITS // 8), dtype=np.uint8)]


def flipped(code: bytes, n: int, rng: np.random.Generator) -> bytes:
    """`code` with exactly n of its bits flipped: n bits from it."""
    bits = np.unpackbits(np.frombuffer(code, np.uint8))
    bits[rng.choice(BITS, n, replace=False)] ^= 1
    return np.packbits(bits).tobytes()


def event(codes: list[bytes], started_ms: int, checkpoint: str = "library", device: str = "unit-1") -> intake.Event:
    """One event (a second long) with these persons, checked as it comes off the broker."""
    body = {
        "schema_version": 2,
        "event_id": str(uuid.uuid4()),
        "site": "campus",
        "checkpoint": checkpoint,
        "device": device,
        "trigger": "pir",
        "started_at": stamp(started_ms),
        "ended_at": stamp(started_ms + 1000),
        "clock": "synchronized",
        "frames": 3,
        "faces": len(codes),
        "persons": [
            {"facehash": code_text(c), "frames": 2, "quality": {"size": 120, "frontalness": 0.9, "sharpness": 80.0}}
            for c in codes
        ],
        "model": "dlib_resnet_v1_int8@b5208826d4c0",
        "key_id": KEY_ID,
        "software": "traceon-edge 0.1.0",
    }
    topic = f"traceon/campus/{checkpoint}/{device}/events"
    return intake.check(topic, json.dumps(events.validate(body)).encode(), "traceon", now_ms=NOW_MS)
