"""Throwaway servers on free loopback ports, for the tests and the benchmarks: mosquitto and PostgreSQL.

Real parts, not mocks: each is the Debian package's own server, started in a folder of its own and
stopped (and its folder removed) when done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ServerError(RuntimeError):
    """A server that is not installed or does not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def collector_broker_settings() -> str:
    """config/mosquitto-collect.conf as shipped, minus the paths that belong to a real install."""
    lines = (ROOT / "config" / "mosquitto-collect.conf").read_text().splitlines()
    keep = [line.split("#")[0].strip() for line in lines]
    return "".join(f"{line}\n" for line in keep if line and not line.startswith(("persistence_location", "autosave")))


class Broker:
    """mosquitto on 127.0.0.1:port with the settings config/mosquitto-collect.conf documents for collectors
    (persistence, queue limits), saving every second so queued QoS 1 messages survive a restart."""

    def __init__(self, directory: Path, extra: str = "", anonymous: bool = True):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise ServerError("mosquitto is not installed: tools/test.sh installs it (apt-get install mosquitto)")
        self.exe, self.port = exe, free_port()
        self.conf = directory / "mosquitto.conf"
        as_root = "user root\n" if os.geteuid() == 0 else ""  # else it drops to a user who cannot read tmp_path
        self.conf.write_text(
            f"{as_root}listener {self.port} 127.0.0.1\nallow_anonymous {str(anonymous).lower()}\n"
            f"{collector_broker_settings()}"
            f"persistence_location {directory}/\nautosave_interval 1\n{extra}"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([self.exe, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        self.wait_listening()

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise ServerError("mosquitto did not start listening within 10 s")

    def pause(self) -> None:  # a stalled network: connections stay up, nothing is acknowledged
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Postgres:
    """A throwaway PostgreSQL server (Debian's postgresql package) on 127.0.0.1:port, trust auth (fsync off
    unless asked: the benchmarks measure with it on)."""

    def __init__(self, fsync: bool = False):
        initdb = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not initdb:
            raise ServerError("PostgreSQL is not installed: tools/test.sh installs it (apt-get install postgresql)")
        self.bin = initdb[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="traceon-pg-"))
        self.as_owner = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.dir, "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.data, self.port = self.dir / "data", free_port()
        self._run("initdb", "-D", self.data, "-U", "traceon", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync={'on' if fsync else 'off'}"
        self.start()
        self.databases = 0

    def start(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-w", "-l", self.dir / "log", "start", "-o", self.options)

    def halt(self) -> None:
        """Stop the server and keep its data: a database that went down."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def _run(self, tool: str, *args) -> None:
        subprocess.run([*self.as_owner, self.bin / tool, *map(str, args)], check=True, capture_output=True)

    def new_database(self) -> str:
        import psycopg

        self.databases += 1
        name = f"t{self.databases}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://traceon@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


class DelayRelay:
    """A TCP relay on a free loopback port that adds `delay` seconds to every round trip (half each way),
    as a broker across a slow link would: bytes keep their order and stream on, each only held back."""

    def __init__(self, target_port: int, delay: float):
        import threading

        self.target_port, self.half = target_port, delay / 2
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, server), (server, client)):
                self._pipe(a, b)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        import queue
        import threading

        held: queue.Queue = queue.Queue()

        def read() -> None:
            while (data := _recv(source)) and not self._closed.is_set():
                held.put((time.monotonic() + self.half, data))
            held.put((0.0, b""))

        def write() -> None:
            while True:
                due, data = held.get()
                if not data:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    sink.sendall(data)
                except OSError:
                    break
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""
