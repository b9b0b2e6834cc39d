"""Sighting events: built from the persons of a burst, validated against the checked-in JSON Schema.

An event is the first thing that leaves the vision stage for disk or network, so it is built from an
explicit list of fields and checked against a schema that forbids anything else.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import stat
import uuid
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jsonschema

from edge import __version__
from edge.errors import TraceonError

if TYPE_CHECKING:  # the unit builds events from persons; the tracer's side only reads them (no vision import)
    from edge.facehash import FaceHasher
    from edge.persons import Person

SCHEMA_VERSION = 2  # 2: `clock` says whether the unit's clock could be trusted for the times


class EventError(TraceonError, ValueError):
    """An event that does not match the schema (a bug: it is never stored or sent)."""


@cache
def schema(name: str = "event") -> dict:
    return json.loads(resources.files("edge").joinpath(f"{name}.schema.json").read_text())


@cache
def validator(name: str = "event") -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema(name))
    return cls(schema(name), format_checker=cls.FORMAT_CHECKER)


def validate(message: dict, name: str = "event") -> dict:
    """`message` if it matches edge/<name>.schema.json (event or health): nothing else may leave a unit."""
    errors = sorted(validator(name).iter_errors(message), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or f"({name})"
        raise EventError(f"{name} does not match its schema at {where}: {errors[0].message}")
    return message


def health_path(outbox_path: Path) -> Path:
    """Where the daemon keeps its latest health report, beside its outbox: `status` and `install-config`
    read it there, with no broker account (on a locked-down broker a unit cannot read its own topics)."""
    return outbox_path.with_name(f"{outbox_path.stem}.health.json")


def save_health(path: Path, report: dict) -> None:
    """Replace the file in one step: a reader never sees half a report. A link planted at the temporary
    name is not followed (O_NOFOLLOW): the daemon writes only its own file."""
    part = path.with_name(path.name + ".part")
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(report, sort_keys=True))
    os.replace(part, path)


def read_health(path: Path, limit: int = 64 * 1024) -> dict:
    """A health report file, read as hostile: a regular file (a FIFO would block the reader), at most
    `limit` bytes, JSON. OSError or ValueError says what is wrong."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than a health report can be ({limit:,} bytes)")
    report = json.loads(data)
    if not isinstance(report, dict):
        raise ValueError("not a JSON object")
    return report


def utc(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_utc(stamp: str) -> datetime.datetime:
    """The moment an event's `...Z` stamp names (the inverse of `utc`)."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


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
    hasher: FaceHasher,
    clock: str = "synchronized",
) -> dict:
    """A schema-valid event; each person with a trusted view is hashed once. `clock`: edge.clock.mark()."""
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
        "software": f"traceon-edge {__version__}",
    }
    return validate(event)
