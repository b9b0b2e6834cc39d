"""`traceon-edge watch` against a real broker and daemon."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

from support.daemon import InThread
from support.health import good_health
from support.unit_config import photos_on_demand
from support.wait import wait_until

from edge.field.watch import SILENT_AFTER_S, Board
from edge.unit import config


def test_watch_prints_each_unit_change_and_event_as_it_arrives(tmp_path, broker):
    path = photos_on_demand(tmp_path, broker.port, "{frames: 3, duration: 0.1, cooldown: 0}")
    command = [sys.executable, "-m", "edge.cli", "watch", "--broker", f"127.0.0.1:{broker.port}", "--site", "s1"]
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watcher.stdout), daemon=True)
    reader.start()
    unit = InThread(path)

    def printed(text: str) -> bool:
        return any(text in line for line in list(lines))

    try:
        wait_until(
            lambda: any("health" not in x and "camera" in x for x in list(lines)),
            30,
            "watch to print the unit's health line",
        )
        unit.daemon.inbox.fire("manual")
        wait_until(lambda: unit.delivered, 30, "the event, acknowledged by the broker")
        wait_until(lambda: printed("trigger manual"), 10, "watch to print the event")
    finally:
        unit.stop()
        try:
            wait_until(lambda: printed(" offline"), 10, "watch to print the unit going offline")
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(10)
            reader.join(5)
    text = "".join(lines)
    print(text)
    assert "watching traceon/s1/+/+/+" in text
    assert "s1/door/d1" in text and " online" in text and " offline" in text
    assert f"config {config.fingerprint(path)}" in text
    persons = len(unit.delivered[0]["persons"])
    assert f"{persons} person(s), {unit.delivered[0]['faces']} face(s) in 3 frames, trigger manual" in text


def test_the_board_shows_a_unit_gone_silent_and_survives_garbage():
    board = Board("traceon")
    health = good_health(outbox_depth=3, last_event=None)
    assert board.update("traceon/s/c/d/status", b"online", 100.0).endswith("online")
    assert "outbox 3" in board.update("traceon/s/c/d/health", json.dumps(health).encode(), 100.0)
    assert board.update("traceon/s/c/d/health", json.dumps(health).encode(), 101.0) is None  # nothing new
    assert "invalid event from s/c/d: not UTF-8 text" in board.update("traceon/s/c/d/events", b"\xff not json", 101.0)
    assert board.update("traceon/s/c/d/cmd/trigger", b"", 101.0) is None
    screen = board.render(101.0 + SILENT_AFTER_S + 5, "broker")
    row = next(line for line in screen.splitlines() if line.startswith("s/c/d"))
    assert f"silent {SILENT_AFTER_S + 5}s" in row and "ok" in row and " 3 " in row
