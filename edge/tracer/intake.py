"""What a collector accepts: one message off the broker in, one checked event out, or a short refusal.

Anyone who can publish on the broker can put anything on an events topic, so every message is hostile
until checked, cheapest check first: the topic, the size before parsing, strict JSON (UTF-8, no NaN or
Infinity, no repeated keys, shallow nesting), the event schema, every FaceHash readable, of the event's
key, scheme and of one calibrated length, and the unit the topic names is the unit the body names. A refusal's
reason is short and never quotes the payload: it goes into a log line.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import cache

import jsonschema

from edge.core import events, facehash, topics
from edge.core.errors import Refused
from edge.core.spans import when

MAX_BYTES = 64 * 1024  # an event of 100 persons (the schema's limit) is about 30 kB
MAX_DEPTH = 5  # the schema's deepest value (event → persons → [i] → quality → size) is at depth 4
MAX_SPAN_MS = 10 * 60 * 1000  # no burst lasts longer: a longer event had its clock stepped mid-burst
MAX_AHEAD_MS = 86_400_000  # a unit's clock may run this far ahead (an hour of time zone confusion, and more)


@dataclass(frozen=True)
class Event:
    """A checked event: its body, and the parts a store indexes."""

    body: dict
    text: str  # canonical JSON (sorted keys): what is stored, and how a resend is told from a forgery
    site: str
    checkpoint: str
    device: str
    started_ms: int
    ended_ms: int
    key_id: str
    bits: int  # length of its FaceHashes (0 when it has none)
    codes: tuple[bytes, ...]  # each person's FaceHash, packed
    clock: str | None = None  # whether the unit's clock was synchronised (schema 2); None from schema 1
    scheme: str = "fh1"  # the FaceHash scheme of every person (schema 3 names it; 1 and 2 hold fh1 only)

    @property
    def event_id(self) -> str:
        return self.body["event_id"]


@cache
def calibrated_lengths(scheme: str = "fh1") -> frozenset[int]:
    """The code lengths a trace has a calibration for: fh1's thresholds, fh2's one length."""
    if scheme == "fh2":
        return frozenset({8 * facehash.FH2_BYTES})
    return frozenset(int(b) for b in facehash.load_scheme()["thresholds"])


def check(topic: str, payload: bytes, prefix: str, now_ms: int | None = None) -> Event:
    """Every check, in order: `receive` then `accept` (a collector puts its per-unit limits between them)."""
    unit, body = receive(topic, payload, prefix)
    return accept(unit, body, now_ms)


def receive(topic: str, payload: bytes, prefix: str) -> tuple[tuple[str, str, str], dict]:
    """The cheap checks: the unit the topic names, the size, strict JSON. The body is not checked yet."""
    unit = topics.unit_of(topic, prefix)
    if unit is None or unit[3] != "events":
        raise Refused(f"not a unit's events topic ({prefix}/<site>/<checkpoint>/<device>/events, each a unit's name)")
    if len(payload) > MAX_BYTES:
        raise Refused(f"{len(payload):,} bytes, more than the {MAX_BYTES:,} an event may have")
    return (unit[0], unit[1], unit[2]), parse(payload)


def accept(unit: tuple[str, str, str], body: dict, now_ms: int | None = None) -> Event:
    """The rest: the schema, the unit the body names, the FaceHashes and the times."""
    check_schema(body)
    if (body["site"], body["checkpoint"], body["device"]) != unit:
        raise Refused("the event names another unit than the topic it came on")
    return build(body, now_ms)


def build(body: dict, now_ms: int | None = None) -> Event:
    """The indexed parts of a schema-valid event; refuses FaceHashes that cannot be stored together, and
    times no clock that works can give (a start more than a day ahead of `now_ms`, an end before it)."""
    codes, lengths = [], set()
    scheme = body.get("scheme", "fh1")
    for i, person in enumerate(body["persons"]):
        try:
            code = facehash.parse(person["facehash"])
        except facehash.FaceHashError as e:
            raise Refused(f"persons/{i}/facehash is not a readable FaceHash{_fh2_fault(e)}") from None
        if code.scheme != scheme:
            raise Refused(f"persons/{i}/facehash is an {code.scheme} FaceHash in an event of scheme {scheme}")
        if code.key_id != body["key_id"]:
            raise Refused(f"persons/{i}/facehash was made with another key than the event's key_id")
        if len(code.bits) not in calibrated_lengths(scheme):
            raise Refused(f"persons/{i}/facehash is {len(code.bits)} bits long, not a calibrated length")
        lengths.add(len(code.bits))
        codes.append(code.packed)
    if len(lengths) > 1:
        raise Refused("the event's FaceHashes have different lengths")
    started, ended = (_ms(body[k]) for k in ("started_at", "ended_at"))
    now_ms = round(time.time() * 1000) if now_ms is None else now_ms
    if started > now_ms + MAX_AHEAD_MS:
        ahead = "more than a day ahead of this collector's clock"
        raise Refused(f"starts at {when(started)} UTC, {ahead}: the unit's clock is wrong")
    if ended < started:
        raise Refused("ends before it starts: the unit's clock is wrong")
    return Event(
        body=body,
        text=json.dumps(body, sort_keys=True, separators=(",", ":")),
        site=body["site"],
        checkpoint=body["checkpoint"],
        device=body["device"],
        started_ms=started,
        ended_ms=ended if ended - started <= MAX_SPAN_MS else started,  # a clock stepped mid-burst
        key_id=body["key_id"],
        bits=lengths.pop() if lengths else 0,
        codes=tuple(codes),
        clock=body.get("clock"),
        scheme=scheme,
    )


def _fh2_fault(error: Exception) -> str:
    """What is wrong with an fh2 code, when parse says it in its own words (a length or a coordinate: never
    the sender's text, which other faults quote)."""
    why = str(error).removeprefix("not a FaceHash: ")
    return f" ({why})" if why.startswith("its fh2 code") else ""


def _ms(stamp: str) -> int:
    try:
        return round(events.parse_utc(stamp).timestamp() * 1000)
    except ValueError:
        raise Refused("a timestamp is not a real date") from None


def parse(payload: bytes) -> dict:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("not UTF-8 text") from None
    try:
        body = json.loads(text, parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_no_repeats)
    except RecursionError:
        raise Refused(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except Refused:
        raise
    except ValueError:  # also too many digits for an int
        raise Refused("not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused("not a JSON object")
    if _depth(body) > MAX_DEPTH:
        raise Refused(f"JSON nested deeper than {MAX_DEPTH} levels")
    return body


def _no_constant(name: str):
    raise Refused(f"JSON holds {name}, which no event has")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Refused("JSON holds a number too large for a float")
    return value


def _no_repeats(pairs: list) -> dict:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise Refused("JSON repeats a key in one object")
    return body


def _depth(value) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_schema(body: dict) -> None:
    error = next(iter(sorted(events.validator().iter_errors(body), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the event"
        raise Refused(f"{where} {_why(error)}")


def _why(error: jsonschema.ValidationError) -> str:
    """What the schema says of the value, never the value itself (it is the sender's)."""
    rule, limit = error.validator, error.validator_value
    if rule == "required":
        missing = [name for name in limit if name not in error.instance]
        return f"lacks the required field(s) {', '.join(missing)}"
    if list(error.absolute_path) == ["schema_version"]:
        named = list(map(str, limit)) if isinstance(limit, list) else [str(limit)]
        versions = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
        return f"is not one this collector reads (schema versions {versions}): upgrade it, or the unit"
    words = {
        "additionalProperties": lambda: "has a field the schema does not allow",
        "type": lambda: f"should be of type {limit}",
        "pattern": lambda: "is not in the expected form",
        "format": lambda: f"is not a valid {limit}",
        "maxLength": lambda: f"is longer than {limit} characters",
        "maxItems": lambda: f"has more than {limit} items",
        "minimum": lambda: f"is below {limit}",
        "maximum": lambda: f"is above {limit}",
        "enum": lambda: f"is not one of {', '.join(map(str, limit))}",
        "const": lambda: f"is not {limit}",
    }
    return words.get(rule, lambda: f"fails the schema's {rule} rule")()
