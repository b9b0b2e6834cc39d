"""Sighting events as a unit makes them, for the benchmarks and evaluations that store or send events.

Every event here comes out of the unit's own `edge.unit.sighting.build` (which checks it against the event
schema), from persons of the unit's own `edge.unit.persons.Person`: a tool keeps no copy of the event's fields,
so a change to the event breaks the tools' smoke tests (tests/system/test_tools.py), not next month's measurement.
"""

from __future__ import annotations

import sys
import uuid
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.core import shipped  # noqa: E402
from edge.unit import sighting  # noqa: E402
from edge.unit.persons import Person  # noqa: E402
from edge.unit.vision import Face  # noqa: E402
from edge.unit.vision.quality import Quality  # noqa: E402


@cache
def model_id() -> str:
    """The shipped model's id, as a unit names it in its events."""
    return shipped.load_models().model_id


def person(embedding: np.ndarray, frames: int = 1, size: int = 120) -> Person:
    """A person seen in `frames` frames of a burst, each a trusted frontal, sharp view with this embedding."""
    quality = Quality(score=1.0, size=size, sharpness=80.0, frontalness=0.9)
    face = Face((0, 0, size, size), np.zeros((5, 2), np.float32), quality, np.empty(0, np.uint8), embedding=embedding)
    return Person([(frame, face, True) for frame in range(frames)])


def event(
    hasher,
    embeddings: list[np.ndarray] | np.ndarray,
    at: float,
    checkpoint: str = "door",
    site: str = "bench",
    device: str = "unit-1",
    trigger: str = "pir",
    frames: int = 10,
) -> dict:
    """The event of a burst of `frames` frames at `at` (seconds since the epoch) in which each embedding is one
    person, seen in every frame; its FaceHashes of `hasher`'s scheme (edge.core.schemes.hasher, fh1 or fh2)."""
    identity = sighting.Identity(site, checkpoint, device, model_id())
    persons = [person(e, frames) for e in embeddings]
    return sighting.build(identity, trigger, at, at + 1.0, frames, persons, hasher)


def random_embeddings(count: int, seed: int = 0) -> np.ndarray:
    """`count` random unit vectors of the embedding's size: FaceHashes as long and varied as real ones."""
    v = np.random.default_rng(seed).standard_normal((count, 128))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def another(event: dict) -> dict:
    """The same event under a new id: another burst of the same size, without hashing and checking it again."""
    return {**event, "event_id": str(uuid.uuid4())}
