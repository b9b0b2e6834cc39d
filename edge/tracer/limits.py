"""What one unit may send, so that a unit gone bad (stolen, misconfigured, or anyone with its broker
account) cannot drown the store or every trace of its checkpoint.

Three limits, each set from what a real unit can make:
- persons per event: one burst of a doorway camera holds a few dozen faces at most;
- cadence: a unit makes at most one event per burst, and bursts are spaced by their length plus a
  cooldown. The bucket runs on the event's own start time, not on arrival: a collector that was away,
  or a unit whose link was down, receives hours of real events at once, and those keep their spacing;
- rows per day of the unit's clock, the ceiling on what even a well-spaced forgery can add.

An event over a limit is set aside whole (the store's `held` table), never mixed into traces nor lost:
an operator releases or drops it (`traceon-edge held`). The cheap checks come first, so a flood costs
a JSON parse per message, not the schema and FaceHash checks, and other units' events wait little.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from edge.core import events

DAY_MS = 86_400_000
MAX_UNITS = 10_000  # units whose state is kept: anyone on an open broker can invent names by the million
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", re.ASCII)


@dataclass(frozen=True)
class Limits:
    # A 1280 px frame holds one row of at most 21 faces of the smallest hashed size (60 px): a doorway does
    # not hold a crowd much deeper than that. The schema's 100 is only a size bound.
    max_persons: int = 30
    spacing_s: float = 2.0  # one event per this many seconds of the unit's clock, sustained (defaults: 1 s + 3 s)
    bucket: int = 60  # events closer than the spacing that a unit may still send (retries, restamped ones)
    rows_per_day: int = 50_000  # persons rows per unit per UTC day of its events
    held_mb_per_unit: int = 200  # set-aside payloads kept per unit; beyond it they are dropped, counted

    def describe(self) -> str:
        return (
            f"at most {self.max_persons} persons an event, one event per {self.spacing_s:g} s of the unit's "
            f"clock (bursts of {self.bucket}), {self.rows_per_day:,} person rows a day per unit"
        )


@dataclass
class Bucket:
    tokens: float
    last_ms: int


@dataclass
class Meter:
    """The limits' state for every unit the collector has heard, in memory (a restart starts afresh: the
    daily counts are read back from the store, the buckets start full)."""

    limits: Limits
    buckets: dict[tuple[str, str, str], Bucket] = field(default_factory=dict)
    rows: dict[tuple[tuple[str, str, str], int], int] = field(default_factory=dict)  # (unit, day) → rows

    def quick(self, unit: tuple[str, str, str], body: dict) -> str | None:
        """Why this parsed (not yet schema-checked) event is over a limit, or None. Takes a token."""
        persons = body.get("persons")
        if isinstance(persons, list) and len(persons) > self.limits.max_persons:
            return f"persons: {len(persons)} persons, more than the {self.limits.max_persons} one burst can hold"
        started = started_ms(body)
        if started is None:
            return None  # the schema check refuses it
        bucket = remember(self.buckets, unit, lambda: Bucket(float(self.limits.bucket), started))
        refill = max(0, started - bucket.last_ms) / (self.limits.spacing_s * 1000)
        bucket.tokens = min(float(self.limits.bucket), bucket.tokens + refill)
        bucket.last_ms = max(bucket.last_ms, started)
        if bucket.tokens < 1:
            return (
                f"cadence: events closer together than a unit makes them (more than {self.limits.bucket} "
                f"beyond one per {self.limits.spacing_s:g} s)"
            )
        bucket.tokens -= 1
        return None

    def day_key(self, unit: tuple[str, str, str], started: int) -> tuple[tuple[str, str, str], int]:
        return unit, started // DAY_MS

    def over_quota(self, unit: tuple[str, str, str], started: int, persons: int, stored_rows) -> str | None:
        """Why these rows would take the unit past its daily quota, or None (and they are counted).
        `stored_rows(unit, day_start_ms)` reads the count from the store the first time a day is met."""
        key = self.day_key(unit, started)
        remember(self.rows, key, lambda: stored_rows(unit, key[1] * DAY_MS))
        if self.rows[key] + persons > self.limits.rows_per_day:
            return f"quota: more than {self.limits.rows_per_day:,} person rows from this unit on one day"
        self.rows[key] += persons
        return None

    def forget_days_before(self, cutoff_ms: int) -> None:
        for key in [k for k in self.rows if k[1] * DAY_MS + DAY_MS < cutoff_ms]:
            del self.rows[key]


def remember(states: dict, key, make):
    """`states[key]`, made if new, as the most recently used; the least recently used goes beyond MAX_UNITS
    (it starts afresh if heard again: a full bucket, its day's rows read back from the store)."""
    value = states.pop(key) if key in states else make()
    states[key] = value
    if len(states) > MAX_UNITS:
        del states[next(iter(states))]
    return value


def started_ms(body: dict) -> int | None:
    """The event's start, if it reads as a stamp (the schema check decides the rest)."""
    stamp = body.get("started_at")
    if not isinstance(stamp, str) or not STAMP.fullmatch(stamp):
        return None
    try:
        return round(events.parse_utc(stamp).timestamp() * 1000)
    except ValueError:
        return None
