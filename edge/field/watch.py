"""`traceon-edge watch`: a live view of the units on a broker, for a technician at a doorway with a laptop.

On a terminal the screen is redrawn once a second: one line per unit (online or not, camera, broker,
outbox, config, last event), the units in trouble first, and the latest events and problems below.
Piped into a file or another program it prints one line per change instead, so the same command serves
a person and a log. What comes from the broker is read as hostile (edge.field.board).
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from edge.core import broker
from edge.core.broker import BrokerConfig
from edge.core.shown import shown
from edge.field.board import SILENT_AFTER_S, Board

__all__ = ["SILENT_AFTER_S", "Board", "watch"]


def watch(
    settings: BrokerConfig, site: str | None = None, out=sys.stdout, screen=None, stop: threading.Event | None = None
) -> int:
    """Until SIGTERM, Ctrl-C or `stop` is set."""
    prefix, where = settings.topic_prefix, f"{settings.host}:{settings.port}"
    screen = out.isatty() if screen is None else screen
    board = Board(prefix)
    topic = f"{prefix}/{site or '+'}/+/+/+"
    stop = stop or threading.Event()

    def on_message(client, userdata, message):
        try:
            line = board.update(message.topic, message.payload, time.monotonic())
        except Exception as e:  # even a topic paho cannot decode: paho's thread must go on
            line = f"{time.strftime('%H:%M:%S')}  a message watch could not read ({shown(repr(e), 100)})"
        if line and not screen:
            print(line, file=out, flush=True)

    def on_connect(client, userdata, flags, reason, properties):
        client.subscribe(topic, qos=1)
        if not screen:
            print(f"watching {shown(topic, 200)} on {where}", file=out, flush=True)

    client = broker.client(settings, reconnect=(1, 10))
    client.on_connect = on_connect
    client.on_message = on_message
    if threading.current_thread() is threading.main_thread():
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
