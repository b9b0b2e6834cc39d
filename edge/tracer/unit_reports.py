"""What a collector keeps of each unit's `status` (retained online/offline, the last will) and `health`
messages: the coverage a trace reports, so that silence is not read as absence.

They are hostile input as events are (anyone on the broker can publish them): the topic must name a unit,
the size is bounded before parsing, health is strict JSON checked against edge/core/health.schema.json.
Of a health report only two words are kept, whether the camera works and whether the clock is synchronised,
and when; never anything else. And a unit is paced: a status transition reaches the store at most once per
STATUS_EVERY_MS (a quicker flip waits, the latest winning, so a crash right after connecting still ends
offline), a health report is read at most once per HEALTH_EVERY_MS (the rest are dropped unparsed, so a
flood costs a size check each); the store keeps a row only when the unit's state changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.core import events
from edge.core.errors import Refused
from edge.tracer import intake
from edge.tracer.limits import STAMP, remember
from edge.tracer.store import UnitReport

KINDS = ("status", "health")
STATES = {b"online": "online", b"offline": "offline"}
MAX_HEALTH_BYTES = 16 * 1024  # a full report (five outbox faults, every text at its limit) is under 5 kB
STATUS_EVERY_MS = 10_000
HEALTH_EVERY_MS = 20_000  # under the units' default period (30 s): a unit that keeps to it loses no report
AHEAD_MS = 60_000  # a report's own time may be this far ahead of the collector's clock; beyond, it is received


# What a unit's source says when nothing is wrong with it (edge/unit/sources.py): not opened yet at start (the
# first health report comes before the first burst), ended (a recorded file), closed (stopping; offline follows).
CAMERA_NOT_FAILING = frozenset({"ok", "not opened yet", "ended", "closed"})


def filters(prefix: str) -> list[str]:
    """Every unit's status and health. Never in a shared group: a shared subscription gets no retained
    message, and each collector of a group must know each unit's state (the store keeps one row a change)."""
    return [f"{prefix}/+/+/+/{kind}" for kind in KINDS]


def status(unit: tuple[str, str, str], payload: bytes, received_ms: int) -> UnitReport:
    state = STATES.get(payload)
    if state is None:
        raise Refused("a status is 'online' or 'offline', nothing else")
    return UnitReport(unit, "status", received_ms, received_ms, state=state)


def health(unit: tuple[str, str, str], payload: bytes, received_ms: int) -> UnitReport:
    if len(payload) > MAX_HEALTH_BYTES:
        raise Refused(f"{len(payload):,} bytes, more than the {MAX_HEALTH_BYTES:,} a health report may have")
    body = intake.parse(payload)
    problem = events.problem(body, "health")
    if problem is not None:
        raise Refused(f"not a health report: {problem}")
    synchronized = body["clock"]["synchronized"]
    clock = {True: "synchronized", False: "unsynchronized", None: "unknown"}[synchronized]
    at = received_ms
    if synchronized is True and STAMP.fullmatch(body["at"]):  # the unit's own time only from a clock it trusts
        said = round(events.parse_utc(body["at"]).timestamp() * 1000)
        at = said if said <= received_ms + AHEAD_MS else received_ms
    camera = "ok" if body["camera"] in CAMERA_NOT_FAILING else "failing"
    return UnitReport(unit, "health", at, received_ms, camera=camera, clock=clock)


@dataclass
class Paced:
    last_ms: int = -(2**62)  # when the last transition was passed on to the store
    state: str | None = None  # which one
    waiting: UnitReport | None = None  # a quicker one, written when its turn comes


@dataclass
class Pacer:
    """Each unit's pace, in memory (bounded as limits.remember bounds it; a restart starts afresh)."""

    statuses: dict[tuple[str, str, str], Paced] = field(default_factory=dict)
    waiting: dict[tuple[str, str, str], Paced] = field(default_factory=dict)
    health_at: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def status(self, report: UnitReport) -> UnitReport | None:
        """The transition to store now, or None (no change, or it waits for its turn)."""
        paced = remember(self.statuses, report.unit, Paced)
        self.waiting.pop(report.unit, None)
        paced.waiting = None
        if report.state == paced.state:
            return None
        if report.received_ms - paced.last_ms >= STATUS_EVERY_MS:
            paced.last_ms, paced.state = report.received_ms, report.state
            return report
        paced.waiting = report
        remember(self.waiting, report.unit, lambda: paced)
        return None

    def due(self, now_ms: int) -> list[UnitReport]:
        """The waiting transitions whose turn has come."""
        ready = [unit for unit, paced in self.waiting.items() if now_ms - paced.last_ms >= STATUS_EVERY_MS]
        reports = []
        for unit in ready:
            paced = self.waiting.pop(unit)
            report, paced.waiting = paced.waiting, None
            if report is not None and report.state != paced.state:
                paced.last_ms, paced.state = now_ms, report.state
                reports.append(report)
        return reports

    def health_turn(self, unit: tuple[str, str, str], now_ms: int) -> bool:
        """Whether this unit's health report may be read now (taking its turn)."""
        last = self.health_at.get(unit)
        if last is not None and now_ms - last < HEALTH_EVERY_MS:
            return False
        remember(self.health_at, unit, lambda: now_ms)
        self.health_at[unit] = now_ms
        return True
