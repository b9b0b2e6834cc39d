"""A burst's sighting event: each person with a trusted view hashed once, the rest counted.

Built from an explicit list of fields and validated against the event schema (edge.core.events) before it
goes anywhere: nothing else may leave a unit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from edge import __version__
from edge.core.events import SCHEMA_VERSION, utc, validate
from edge.unit.persons import Person


@dataclass(frozen=True)
class Identity:
    site: str
    checkpoint: str
    device: str
    model: str


def build(
    identity: Identity,
    trigger: str,
    started: float,
    ended: float,
    frames: int,
    persons: list[Person],
    hasher,
    clock: str = "synchronized",
) -> dict:
    """A schema-valid event; each person with a trusted view is hashed once by `hasher` (either scheme's, from
    edge.core.schemes.hasher). `clock`: edge.clock.mark()."""
    entries = [
        {
            "facehash": str(hasher.hash(p.embedding)),
            "frames": len(p.frames),
            "quality": {k: v for k, v in p.quality().items() if k in ("size", "frontalness", "sharpness")},
        }
        for p in persons
        if p.hashable
    ]
    event = {
        "schema_version": SCHEMA_VERSION,
        "event_id": str(uuid.uuid4()),
        "site": identity.site,
        "checkpoint": identity.checkpoint,
        "device": identity.device,
        "trigger": trigger,
        "started_at": utc(started),
        "ended_at": utc(ended),
        "clock": clock,
        "frames": frames,
        "faces": sum(len(p.sightings) for p in persons),
        "persons": entries,
        "model": identity.model,
        "key_id": hasher.key.id,
        "scheme": hasher.scheme,
        "software": f"traceon-edge {__version__}",
    }
    return validate(event)
