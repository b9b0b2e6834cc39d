"""Load for `traceon-edge watch`: retained messages put on a broker fast, and watch run as a process whose
output and peak memory can be read. Shared by tests/field/test_watch_hostile.py and tools/bench_watch.py."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable

import paho.mqtt.client as mqtt

CLEAR = b"\x1b[H\x1b[2J"  # what watch writes before each redraw


def publish(port: int, messages: Iterable[tuple[str, bytes]], qos: int = 0, retain: bool = True) -> None:
    """Each (topic, payload) from one client; returns once the broker holds them all (a QoS 1 message sent
    after them is acknowledged, and the broker handles one connection's messages in order)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=qos, retain=retain)
        client.publish("load/done", b"", qos=1).wait_for_publish(120)
    finally:
        client.disconnect()
        client.loop_stop()


class Watcher:
    """`traceon-edge watch` as a process: on a pseudo-terminal (screen mode) or into a pipe (a line per change)."""

    def __init__(self, port: int, screen: bool, env: dict | None = None, cwd: str | None = None):
        """`cwd`: where it runs (python -m looks there first for the edge package)."""
        command = [sys.executable, "-m", "edge.cli", "watch", "--broker", f"127.0.0.1:{port}"]
        if screen:
            self._fd, terminal = pty.openpty()
            self.process = subprocess.Popen(command, stdout=terminal, env=env, cwd=cwd, stderr=subprocess.PIPE)
            os.close(terminal)
        else:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=cwd, stderr=subprocess.PIPE)
            self._fd = self.process.stdout.fileno()
        self.output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 1 << 16)
            except OSError:  # a pseudo-terminal says EIO once the process has gone
                return
            if not chunk:
                return
            with self._lock:
                self.output += chunk

    def raw(self) -> bytes:
        with self._lock:
            return bytes(self.output)

    def text(self) -> str:
        return self.raw().decode(errors="replace")

    def frames(self) -> list[bytes]:
        """Each whole screen drawn so far (screen mode), oldest first."""
        return self.raw().split(CLEAR)[1:-1]

    def peak_rss_kb(self) -> int:
        """The process's peak resident memory (VmHWM), in kB."""
        with open(f"/proc/{self.process.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    def stop(self) -> str:
        """Stop it (SIGTERM); what it said on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self._reader.join(10)
        return self.process.stderr.read().decode(errors="replace")
