"""`traceon-edge watch`: a live view of the units on a broker, for a technician at a doorway with a laptop.

On a terminal the screen is redrawn once a second: one line per unit (online or not, camera, broker,
outbox, config, last event) and the latest events below. Piped into a file or another program it prints
one line per change instead, so the same command serves a person and a log.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from edge.core import broker
from edge.core.broker import BrokerConfig
from edge.core.events import parse_utc

SILENT_AFTER_S = 90  # no health report for this long: the unit (or its link) is probably down


@dataclass
class UnitView:
    status: str = "unknown"
    health: dict = field(default_factory=dict)
    heard: float = 0.0  # when the last health report arrived (monotonic)


def _clock(stamp: str | None) -> str:
    """HH:MM:SS (local time) of an ISO UTC stamp."""
    if not stamp:
        return "-"
    return parse_utc(stamp).astimezone().strftime("%H:%M:%S")


def _event_line(unit: str, event: dict) -> str:
    persons = len(event.get("persons", []))
    faces = event.get("faces", 0)
    return (
        f"{_clock(event.get('ended_at'))}  {unit:<28} {persons} person(s), {faces} face(s) in "
        f"{event.get('frames', '?')} frames, trigger {event.get('trigger', '?')}"
    )


def _health_line(unit: str, health: dict) -> str:
    return (
        f"{time.strftime('%H:%M:%S')}  {unit:<28} camera {health.get('camera', '?')}, "
        f"broker {health.get('broker', '?')}, outbox {health.get('outbox_depth', '?')}, "
        f"config {health.get('config', '?')}"
    )


class Board:
    """What is known of each unit; `update` returns a line for each change worth telling."""

    def __init__(self, prefix: str, recent: int = 8):
        self.prefix = prefix
        self.units: dict[str, UnitView] = {}
        self.recent: deque[str] = deque(maxlen=recent)
        self.lock = threading.Lock()

    def update(self, topic: str, payload: bytes, now: float) -> str | None:
        parts = topic.removeprefix(self.prefix + "/").split("/")
        if len(parts) != 4:
            return None
        unit, kind = "/".join(parts[:3]), parts[3]
        with self.lock:
            view = self.units.setdefault(unit, UnitView())
            try:
                if kind == "status":
                    view.status = payload.decode(errors="replace")
                    return f"{time.strftime('%H:%M:%S')}  {unit:<28} {view.status}"
                if kind == "health":
                    health, before = json.loads(payload), view.health
                    view.health, view.heard = health, now
                    keys = ("camera", "broker", "config", "outbox_depth", "key_id")
                    if any(health.get(k) != before.get(k) for k in keys):
                        return _health_line(unit, health)
                    return None
                if kind == "events":
                    line = _event_line(unit, json.loads(payload))
                    self.recent.appendleft(line)
                    return line
            except (ValueError, UnicodeDecodeError):
                return f"{time.strftime('%H:%M:%S')}  {unit:<28} unreadable {kind} message"
        return None

    def render(self, now: float, source: str) -> str:
        with self.lock:
            lines = [
                f"traceon-edge watch  {source}  {time.strftime('%H:%M:%S')}   (Ctrl-C to leave)",
                "",
                f"{'unit':<28} {'state':<16} {'camera':<12} {'broker':<12} {'outbox':>6}  {'config':<17} last event",
            ]
            for unit, view in sorted(self.units.items()):
                h = view.health
                state = view.status
                if view.heard and now - view.heard > SILENT_AFTER_S:
                    state = f"silent {int(now - view.heard)}s"
                last = h.get("last_event") or {}
                last_text = f"{_clock(last.get('at'))}, {last.get('persons', 0)} person(s)" if last else "-"
                broker = str(h.get("broker", "?"))
                lines.append(
                    f"{unit:<28} {state:<16} {h.get('camera', '?')!s:<12} {broker[:12]:<12} "
                    f"{h.get('outbox_depth', '?')!s:>6}  {h.get('config', '?')!s:<17} {last_text}"
                )
            if not self.units:
                lines.append("(no unit has reported yet)")
            lines += ["", "latest events:"] + (list(self.recent) or ["(none yet)"])
        return "\n".join(lines)


def watch(settings: BrokerConfig, site: str | None = None, out=sys.stdout, screen=None) -> int:
    prefix, where = settings.topic_prefix, f"{settings.host}:{settings.port}"
    screen = out.isatty() if screen is None else screen
    board = Board(prefix)
    topic = f"{prefix}/{site or '+'}/+/+/+"
    stop = threading.Event()

    def on_message(client, userdata, message):
        line = board.update(message.topic, message.payload, time.monotonic())
        if line and not screen:
            print(line, file=out, flush=True)

    def on_connect(client, userdata, flags, reason, properties):
        client.subscribe(topic, qos=1)
        if not screen:
            print(f"watching {topic} on {where}", file=out, flush=True)

    client = broker.client(settings, reconnect=(1, 10))
    client.on_connect = on_connect
    client.on_message = on_message
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        client.connect(settings.host, settings.port, keepalive=15)
    except OSError as e:
        print(f"traceon-edge: cannot reach the broker at {where}: {e.strerror or e}", file=sys.stderr)
        return 1
    client.loop_start()
    try:
        while not stop.wait(1.0):
            if screen:
                state = "connected" if client.is_connected() else "connecting..."
                out.write("\x1b[H\x1b[2J" + board.render(time.monotonic(), f"{where} ({state})") + "\n")
                out.flush()
    except KeyboardInterrupt:
        pass
    client.disconnect()
    client.loop_stop()
    return 0
