"""The unit's daemon under test: in a thread of the test, or as a process (`traceon-edge run`), alone or
restarted whenever it exits as systemd's Restart= does; and what its outbox holds."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from edge.unit.daemon import Daemon
from edge.unit.outbox import waiting_ids

CLI = [sys.executable, "-m", "edge.cli"]
COMMITTED = re.compile(r"event ([0-9a-f-]{36}) committed")


class InThread:
    """The daemon run in a thread of the test; `delivered` are the events the broker acknowledged."""

    def __init__(self, path, pin_factory=None, clock=None, parts=None):
        self.delivered: list[dict] = []
        self.daemon = Daemon(path, pin_factory, self.delivered.append, clock, parts)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.daemon.run()
        except BaseException as e:
            self.error = e

    def stop(self):
        self.daemon.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()
        assert self.error is None


class DaemonProcess:
    """`traceon-edge run` as a process, its log in a file; what it committed, read from that log."""

    def __init__(self, path: Path, log: Path, prefix: tuple[str, ...] = ()):
        """`prefix`: a command it is run under (e.g. setpriv, to drop root's powers)."""
        self.path, self.log, self.prefix = path, log, prefix
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(
                [*self.prefix, *CLI, "run", "--config", str(self.path)], stderr=out, stdout=subprocess.DEVNULL
            )

    def committed(self) -> set[str]:
        return set(COMMITTED.findall(self.log.read_text())) if self.log.exists() else set()

    def said(self, text: str, times: int = 1) -> bool:
        return self.log.exists() and self.log.read_text().count(text) >= times

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


class Supervised:
    """`traceon-edge run` restarted whenever it exits, as systemd's Restart= does; its pid in a file."""

    def __init__(self, live: Path, log: Path):
        self.live, self.pidfile, self.log = live, live.parent / "daemon.pid", log
        self.starts, self._stop = 0, threading.Event()
        self.process: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with open(self.log, "a") as log:
                self.process = subprocess.Popen([*CLI, "run", "--config", str(self.live)], stderr=log)
            self.starts += 1
            self.pidfile.write_text(str(self.process.pid))
            self.process.wait()
            self._stop.wait(0.5)  # systemd's RestartSec

    def stop(self) -> None:
        self._stop.set()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.thread.join(10)


def pending_ids(path) -> list[str]:
    """The ids of the events waiting in the outbox at `path`, oldest first."""
    if not path.exists():
        return []
    try:
        return waiting_ids(path, timeout=5)
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):  # the daemon has created the file but not yet its table
            return []
        raise
