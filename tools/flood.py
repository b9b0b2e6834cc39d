"""A unit gone bad, as an attacker with its broker account would play it: well-formed events full of random
FaceHashes of the deployment's key, at one checkpoint. The limit tests and tools/bench_flood.py send these."""

from __future__ import annotations

import json
import random
import uuid

from edge.core import events, facehash


def junk_event(unit: tuple[str, str, str], key_id: str, at: float, persons: int, rng: random.Random) -> dict:
    """A schema-valid event at `at` (seconds since 1970) of `persons` random 1024-bit FaceHashes."""
    site, checkpoint, device = unit
    codes = [str(facehash.from_packed(key_id, rng.randbytes(128), 1024)) for _ in range(persons)]
    return {
        "schema_version": 2,
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "site": site,
        "checkpoint": checkpoint,
        "device": device,
        "trigger": "pir",
        "started_at": events.utc(at),
        "ended_at": events.utc(at + 1),
        "clock": "synchronized",
        "frames": 10,
        "faces": persons,
        "persons": [
            {"facehash": c, "frames": 3, "quality": {"size": 120, "frontalness": 0.9, "sharpness": 80.0}} for c in codes
        ],
        "model": "dlib_resnet_v1_int8@b5208826d4c0",
        "key_id": key_id,
        "software": "traceon-edge 0.1.0",
    }


def flood(client, prefix: str, unit: tuple[str, str, str], key_id: str, at: float, count: int, persons: int) -> int:
    """Publish `count` junk events at QoS 1 around `at` (spread over a minute) through a connected paho
    client; waits for the broker to take them all. The bytes sent."""
    rng, sent, pending = random.Random(7), 0, []
    topic = f"{prefix}/{'/'.join(unit)}/events"
    for i in range(count):
        payload = json.dumps(junk_event(unit, key_id, at + (i % 60), persons, rng)).encode()
        pending.append(client.publish(topic, payload, qos=1))
        sent += len(payload)
        if len(pending) >= 200:
            for info in pending:
                info.wait_for_publish(30)
            pending.clear()
    for info in pending:
        info.wait_for_publish(30)
    return sent
