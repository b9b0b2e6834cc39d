"""Events of either FaceHash scheme as units publish them (event schema 3 names the scheme; 1 and 2 hold fh1
only), for the tracer's tests of fh1 and fh2 rows side by side, and codes of made-up fh2 persons."""

from __future__ import annotations

import json
import uuid
from functools import cache

import numpy as np

from edge.core import events, facehash
from edge.core import schemes as core_schemes
from edge.tracer import intake
from support.events import KEY, T0

QUALITY = {"size": 120, "frontalness": 0.9, "sharpness": 80.0}


@cache
def hasher(scheme: str):
    """The tests' key (support.events.KEY) in this scheme."""
    return core_schemes.hasher(KEY, facehash.load_scheme(), scheme)


def body(codes: list[str], checkpoint: str, seconds: float, scheme: str, *, version: int = 3, **fields) -> dict:
    """An event at T0 + seconds from campus/<checkpoint>/unit-1, NOT validated (hostile tests change it)."""
    made = {
        "schema_version": version,
        "event_id": str(uuid.uuid4()),
        "site": "campus",
        "checkpoint": checkpoint,
        "device": "unit-1",
        "trigger": "pir",
        "started_at": events.utc(T0 + seconds),
        "ended_at": events.utc(T0 + seconds + 1),
        "frames": 3,
        "faces": len(codes),
        "persons": [{"facehash": c, "frames": 2, "quality": QUALITY} for c in codes],
        "model": "dlib_resnet_v1_int8@b5208826d4c0",
        "key_id": KEY.id,
        "software": "traceon-edge 0.1.0",
    }
    if version >= 2:
        made["clock"] = "synchronized"
    if version >= 3:
        made["scheme"] = scheme
    return made | fields


def event(codes: list[str], checkpoint: str, seconds: float, scheme: str = "fh2") -> dict:
    """A schema-valid event of version 3 in `scheme` (fh1 events of version 2 and 1 stay valid: event_of)."""
    return events.validate(body(codes, checkpoint, seconds, scheme))


def checked(made: dict) -> intake.Event:
    topic = f"traceon/{made['site']}/{made['checkpoint']}/{made['device']}/events"
    return intake.check(topic, json.dumps(made).encode(), "traceon")


def fh2_text(code: np.ndarray, key_id: str = KEY.id) -> str:
    """The text of an fh2 code given as 128 signed coordinates."""
    data = np.asarray(code, np.int8).tobytes()
    return str(facehash.from_packed(key_id, data, 8 * len(data), "fh2"))


def fh2_person(rng: np.random.Generator) -> np.ndarray:
    """A made-up person's fh2 coordinates: about 32 code units a standard deviation, as real codes have."""
    return np.clip(np.rint(rng.normal(0, 32, 128)), -127, 127).astype(np.int8)
