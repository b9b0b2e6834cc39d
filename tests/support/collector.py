"""`traceon-edge collect` as a process, and what its tests feed it and read back (tests/tracer/test_collect*.py):
stream (events from the photos' FaceHashes), Collector, contents and wait_stored (what the database holds)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from edge.tracer import store
from support.events import event_of
from support.wait import wait_until


def stream(codes: dict, count: int, checkpoint: str = "door") -> list[dict]:
    """`count` distinct events from the real photos' FaceHashes, a minute apart, as unit campus/<checkpoint>/unit-1."""
    names = sorted(codes)
    return [event_of([codes[names[n % len(names)]]], checkpoint, 60 * n) for n in range(count)]


class Collector:
    """`traceon-edge collect` as a process; its stderr lines are kept as they come."""

    def __init__(self, port: int, db: str, client_id: str = "collector-1", *extra: str, tls: bool = False):
        broker = ["--broker", f"localhost:{port}"] if tls else ["--broker", f"127.0.0.1:{port}"]
        command = [sys.executable, "-m", "edge.cli", "collect", *broker, "--db", db, "--client-id", client_id, *extra]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The last line collect wrote that holds `text`, once there is one (it may have written it and ended)."""

        def said() -> str | None:
            ended = self.process.poll() is not None
            if ended:
                self.reader.join(5)  # every line it wrote
            found = [line for line in list(self.lines) if text in line]
            assert found or not ended, f"collect ended with {self.process.returncode}: {''.join(self.lines)}"
            return found[-1] if found else None

        return wait_until(said, timeout, lambda: f"collect to say {text!r}; it said: {''.join(self.lines)}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.reader.join(5)
        return "".join(self.lines)


def contents(url: str) -> tuple[list[str], int]:
    """Stored event ids (with repeats, if any) and person rows."""
    db = store.open_store(url)
    try:
        ids = [r[0] for r in db.execute("SELECT event_id FROM events").fetchall()]
        return ids, db.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
    finally:
        db.close()


def wait_stored(url: str, count: int, timeout: float = 60) -> None:
    wait_until(
        lambda: len(contents(url)[0]) >= count,
        timeout,
        lambda: f"{count} events stored ({len(contents(url)[0])} are)",
        interval=0.2,
    )
