"""Events made by hand: a tracer's day of sightings under one test key, and a unit's plain event."""

from __future__ import annotations

import datetime
import json
import time
import uuid

from edge.core import events
from edge.core.facehash import Key
from edge.tracer import intake
from support.health import good_health

KEY = Key(b"contact tracing test key........")
T0 = float((int(time.time()) // 3600 - 48) * 3600)  # two days ago on the hour: inside a collector's retention
NOW = datetime.datetime.fromtimestamp(T0, datetime.UTC) + datetime.timedelta(days=1)
STRIDE, SINCE = datetime.timedelta(minutes=30), datetime.timedelta(days=14)


def event_of(codes: list[str], checkpoint: str, seconds: float, key_id: str = KEY.id, length: float = 1.0) -> dict:
    """A schema-valid event at T0 + seconds with these FaceHashes, as a unit at campus/<checkpoint> sends it."""
    at = T0 + seconds
    return events.validate(
        {
            "schema_version": 1,
            "event_id": str(uuid.uuid4()),
            "site": "campus",
            "checkpoint": checkpoint,
            "device": "unit-1",
            "trigger": "pir",
            "started_at": events.utc(at),
            "ended_at": events.utc(at + length),
            "frames": 3,
            "faces": len(codes),
            "persons": [
                {"facehash": c, "frames": 2, "quality": {"size": 120, "frontalness": 0.9, "sharpness": 80.0}}
                for c in codes
            ],
            "model": "dlib_resnet_v1_int8@b5208826d4c0",
            "key_id": key_id,
            "software": "traceon-edge 0.1.0",
        }
    )


def checked(body: dict) -> intake.Event:
    """The event as the collector takes it in from its topic."""
    return intake.check(
        f"traceon/{body['site']}/{body['checkpoint']}/{body['device']}/events", json.dumps(body).encode(), "traceon"
    )


def sample_event(n: int) -> dict:
    """Unit s1/door/d1's n-th event: no persons, a second apart."""
    return {
        "schema_version": 2,
        "event_id": str(uuid.uuid4()),
        "site": "s1",
        "checkpoint": "door",
        "device": "d1",
        "trigger": "interval",
        "started_at": events.utc(1.8e9 + n),
        "ended_at": events.utc(1.8e9 + n + 0.5),
        "clock": "synchronized",
        "frames": 1,
        "faces": 0,
        "persons": [],
        "model": "dlib_resnet_v1_int8@b5208826d4c0",
        "key_id": "aaaaaaaa",
        "software": "traceon-edge 0.1.0",
    }


def sample_health() -> dict:
    """A unit's health report with every optional part filled in (a trigger, an event, an outbox fault, a key
    chain's epoch)."""
    return good_health(
        at=events.utc(1.8e9),
        last_trigger={"kind": "pir", "at": events.utc(1.8e9 - 5)},
        last_event={"id": str(uuid.uuid4()), "at": events.utc(1.8e9 - 4), "persons": 1},
        key_epoch="week of 2027-01-11",
        epoch_length="7d",
        outbox={
            "problem": "",
            "faults": [
                {"kind": "damaged", "at": "20270115T080000Z", "moved_to": "o.damaged", "carried_over": 1, "lost": 0}
            ],
        },
    )
