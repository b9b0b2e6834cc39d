"""What `watch` knows of each unit, read from the broker as hostile input.

Every message is checked against its schema before use, every string from the broker is printed through
`shown`, and each message and each screen row is handled in its own guard: a bad message or a bug costs
one line, never paho's network thread or the screen. Memory and redraws stay bounded however many units
the broker holds: at most `max_units` are followed, and a redraw writes only the rows shown.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
from collections import deque
from dataclasses import dataclass

from edge.core import events
from edge.core.shown import shown

SILENT_AFTER_S = 90  # no health report for this long: the unit (or its link) is probably down
MAX_UNITS = 10_000  # followed; past it a unit is only counted (a few MB, and a redraw stays quick)
MAX_PAYLOAD = 64 * 1024  # a health report or an event is a few kB: anything larger is not read
ROWS = 50  # units on the screen; the rest are summed up in one line
UNIT_WIDTH = 28


@dataclass(slots=True)
class UnitView:
    """What the screen needs of a unit: short, already printable strings, never a whole report."""

    status: str = "unknown"
    camera: str = "?"
    broker: str = "?"
    outbox: str = "?"
    config: str = "?"
    last: str = "-"
    heard: float = 0.0  # when the last good health report arrived (monotonic)
    invalid: str = ""  # why its latest health report was refused; empty once a good one comes

    def trouble(self, now: float) -> str:
        """Why a technician should look at this unit first; empty when nothing is wrong."""
        if self.invalid:
            return "invalid health"
        if self.heard and now - self.heard > SILENT_AFTER_S:
            return f"silent {int(now - self.heard)}s"
        if self.status not in ("online", "unknown"):
            return self.status
        if self.camera not in ("ok", "?") or self.broker not in ("connected", "?"):
            return self.status
        return ""


def _clock(stamp: str | None) -> str:
    """HH:MM:SS (local time) of an ISO UTC stamp."""
    try:
        return events.parse_utc(stamp).astimezone().strftime("%H:%M:%S") if stamp else "-"
    except (TypeError, ValueError):
        return "?"


def _now() -> str:
    return time.strftime("%H:%M:%S")


def _json(payload: bytes, name: str) -> tuple[dict | None, str]:
    """The message checked against edge/core/<name>.schema.json, or None and why not (never quoting it)."""
    if len(payload) > MAX_PAYLOAD:
        return (
            None,
            f"{len(payload):,} bytes, larger than {'a health report' if name == 'health' else 'an event'} can be",
        )
    try:
        message = json.loads(payload.decode())  # decoded first: json would take a BOM for UTF-16 or UTF-32
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError as e:
        return None, f"not JSON ({e.msg if hasattr(e, 'msg') else 'unreadable'})"
    why = events.problem(message, name)
    return (None, why) if why else (message, "")


class Board:
    """What is known of each unit; `update` returns a line for each change worth telling."""

    def __init__(self, prefix: str, recent: int = 8, max_units: int = MAX_UNITS):
        self.prefix, self.max_units = prefix, max_units
        self.units: dict[str, UnitView] = {}
        self.recent: deque[str] = deque(maxlen=recent)
        self.not_followed = 0  # messages from units past max_units
        self.lock = threading.Lock()

    def update(self, topic: str, payload: bytes, now: float) -> str | None:
        """One message's line, or None; a surprise while reading it is said in that line."""
        try:
            with self.lock:
                return self._update(topic, payload, now)
        except Exception as e:  # one message must never stop the others: say it and go on
            return f"{_now()}  {shown(topic)}: watch could not read this message ({shown(repr(e), 100)})"

    def _update(self, topic: str, payload: bytes, now: float) -> str | None:
        parts = topic.removeprefix(self.prefix + "/").split("/")
        if len(parts) != 4:
            return None
        unit, kind = shown("/".join(parts[:3]), 60), parts[3]
        view = self.units.get(unit)
        if view is None:
            if len(self.units) >= self.max_units:
                self.not_followed += 1
                if self.not_followed == 1:
                    return (
                        f"{_now()}  more than {self.max_units:,} units: the others are not followed "
                        "(watch fewer with --site)"
                    )
                return None
            view = self.units[unit] = UnitView()
        if kind == "status":
            view.status = shown(payload[:200].decode(errors="replace"), 24)
            return f"{_now()}  {unit:<{UNIT_WIDTH}} {view.status}"
        if kind == "health":
            return self._health(unit, view, payload, now)
        if kind == "events":
            event, why = _json(payload, "event")
            line = f"{_now()}  invalid event from {unit}: {shown(why, 120)}" if why else _event_line(unit, event)
            self.recent.appendleft(line)
            return line
        return None

    def _health(self, unit: str, view: UnitView, payload: bytes, now: float) -> str | None:
        health, why = _json(payload, "health")
        if why:  # the last good report stays on the screen
            said, view.invalid = view.invalid, shown(why, 120)
            if said == view.invalid:
                return None
            line = f"{_now()}  invalid health from {unit}: {view.invalid}"
            self.recent.appendleft(line)
            return line
        last = health["last_event"]
        before = (view.camera, view.broker, view.config, view.outbox, view.invalid)
        view.camera, view.broker = shown(health["camera"], 12), shown(health["broker"], 40)
        view.config, view.outbox = health["config"], str(health["outbox_depth"])
        view.last = f"{_clock(last['at'])}, {last['persons']} person(s)" if last else "-"
        view.heard, view.invalid = now, ""
        if (view.camera, view.broker, view.config, view.outbox, view.invalid) == before:
            return None
        return (
            f"{_now()}  {unit:<{UNIT_WIDTH}} camera {view.camera}, broker {view.broker}, "
            f"outbox {view.outbox}, config {view.config}"
        )

    def render(self, now: float, source: str, rows: int = ROWS) -> str:
        """The screen: the units in trouble first, then the rest by name, at most `rows` of them."""
        with self.lock:
            lines = [
                f"traceon-edge watch  {shown(source, 80)}  {_now()}   (Ctrl-C to leave)",
                "",
                f"{'unit':<{UNIT_WIDTH}} {'state':<16} {'camera':<12} {'broker':<12} {'outbox':>6}  "
                f"{'config':<17} last event",
            ]
            order = heapq.nsmallest(rows, self.units.items(), key=lambda item: (not item[1].trouble(now), item[0]))
            lines += [_row(unit, view, now) for unit, view in order]
            rest = len(self.units) - len(order)
            if rest:
                silent = sum(1 for v in self.units.values() if v.heard and now - v.heard > SILENT_AFTER_S)
                lines.append(f"… and {rest:,} more units ({silent:,} silent in all)")
            if self.not_followed:
                lines.append(
                    f"… more than {self.max_units:,} units: {self.not_followed:,} messages from the others "
                    "not followed (watch fewer with --site)"
                )
            if not self.units:
                lines.append("(no unit has reported yet)")
            lines += ["", "latest events and problems:"] + (list(self.recent) or ["(none yet)"])
        return "\n".join(lines)


def _row(unit: str, view: UnitView, now: float) -> str:
    try:
        state = view.trouble(now) or view.status
        return (
            f"{unit:<{UNIT_WIDTH}} {state[:16]:<16} {view.camera[:12]:<12} {view.broker[:12]:<12} "
            f"{view.outbox:>6}  {view.config:<17} {view.last}"
        )
    except Exception as e:  # one unit's row must never blank the screen
        return f"{unit:<{UNIT_WIDTH}} (cannot show this unit: {shown(repr(e), 80)})"


def _event_line(unit: str, event: dict) -> str:
    return (
        f"{_clock(event['ended_at'])}  {unit:<{UNIT_WIDTH}} {len(event['persons'])} person(s), "
        f"{event['faces']} face(s) in {event['frames']} frames, trigger {event['trigger']}"
    )
