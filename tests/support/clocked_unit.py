"""The unit's real daemon (edge.unit.daemon.Daemon) in a process of its own, on a clock the test drives.

    python -m support.clocked_unit CONFIG CLOCK

CLOCK is a small JSON file the test rewrites, {"offset": seconds, "synchronized": bool}: the daemon's wall
clock reads time.time() + offset, and says it is synchronised as the file does (as tests/unit/test_clock.py
hands JumpyClock to a daemon in a thread). Each event the broker acknowledged is printed as a JSON line on
standard output; SIGUSR1 starts a burst, SIGTERM stops, as for `traceon-edge run`.

ClockedUnit runs it for a test: a unit with a folder of its own (its copy of the key chain, its outbox and
health file), as installed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import edge
from edge.core import health_file, keychain
from edge.unit.clock import boot_id
from edge.unit.daemon import Daemon

TESTS = Path(__file__).resolve().parents[1]
CONFIG = """unit: {{site: s1, checkpoint: door, device: {device}}}
trigger: {{kind: manual}}
source: {{kind: images, path: {images}, loop: true}}
burst: {{frames: 1, duration: 0.05, cooldown: 0}}
vision: {{upsample: 0, threads: 1}}
facehash: {{key_file: {chain}}}
mqtt: {{port: {port}, keepalive: 5, health_every: 1}}
outbox: {{path: {outbox}}}
clock: {{hold_unsynchronized: {hold}}}
"""


def set_clock(path: Path, wall: float, synchronized: bool) -> None:
    """Make the clock at `path` read `wall` now (and on from there), synchronised or not; replaced whole."""
    new = path.with_name(path.name + ".new")
    new.write_text(json.dumps({"offset": wall - time.time(), "synchronized": synchronized}))
    os.replace(new, path)


class FileClock:
    """A wall clock off by the offset in a file, synchronised when the file says so; monotonic time is real."""

    def __init__(self, path: Path):
        self.path, self.boot = path, boot_id()
        self._lock = threading.Lock()
        self._said = {"offset": 0.0, "synchronized": False}

    def _read(self) -> dict:
        with self._lock:
            with contextlib.suppress(OSError, ValueError):  # being replaced: the last reading stands
                self._said = json.loads(self.path.read_text())
            return self._said

    def wall(self) -> float:
        return time.time() + self._read()["offset"]

    def mono(self) -> float:
        return time.monotonic()

    def synchronized(self) -> bool:
        return bool(self._read()["synchronized"])

    def state(self) -> tuple[bool, str]:
        return self.synchronized(), "test"


class ClockedUnit:
    """Unit s1/door/`device` as a process of this module: its state in `folder` (a copy of `chain`, made as an
    install makes it, its outbox and health file), its clock file, log and printed events in `outside`."""

    def __init__(self, folder: Path, outside: Path, device: str, port: int, chain: Path, images: Path, hold=0):
        self.folder, self.device = folder, device
        folder.mkdir(mode=0o700)
        self.chain_file = folder / "unit.chain"
        shutil.copyfile(chain, self.chain_file)
        self.chain_file.chmod(0o600)
        self.outbox = folder / "outbox.sqlite"
        self.config = outside / f"{device}.yaml"
        self.config.write_text(
            CONFIG.format(device=device, images=images, chain=self.chain_file, port=port, outbox=self.outbox, hold=hold)
        )
        self.clock, self.log, self.out = (outside / f"{device}.{end}" for end in ("clock", "log", "events"))
        self.process: subprocess.Popen | None = None

    def start(self, wall: float, synchronized: bool) -> None:
        set_clock(self.clock, wall, synchronized)
        path = os.pathsep.join([str(Path(edge.__file__).parents[1]), str(TESTS), os.environ.get("PYTHONPATH", "")])
        with open(self.log, "a") as log, open(self.out, "a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "support.clocked_unit", str(self.config), str(self.clock)],
                stdout=out,
                stderr=log,
                env={**os.environ, "PYTHONPATH": path},
            )

    def running(self) -> bool:
        """It has started (its signals are set: a burst may be asked for)."""
        return self.log.exists() and "running: s1/door/" in self.log.read_text()

    def set_clock(self, wall: float, synchronized: bool = True) -> None:
        set_clock(self.clock, wall, synchronized)

    def burst(self) -> None:
        self.process.send_signal(signal.SIGUSR1)

    def events(self) -> list[dict]:
        """The events the broker has acknowledged, in order."""
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.endswith("}")]

    def chain(self) -> keychain.Chain:
        """What its key file holds now."""
        return keychain.load(self.chain_file)

    def health(self) -> dict | None:
        try:
            return health_file.read(health_file.path_beside(self.outbox))
        except (OSError, ValueError) as e:
            return {"error": str(e)}

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def main(argv: list[str]) -> int:
    config, clock = Path(argv[0]), Path(argv[1])
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def show(event: dict) -> None:
        print(json.dumps(event), flush=True)

    return Daemon(config, on_event=show, clock=FileClock(clock)).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
