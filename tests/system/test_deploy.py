"""`traceon-edge deploy` against a real sshd on loopback, with a real daemon (and broker) behind it.

The daemon runs under a small supervisor that restarts it when it exits, as systemd's Restart= does on
a unit, so "reload" can be a SIGHUP (ExecReload) or a restart.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.daemon import CLI, Supervised
from support.data import ROOT
from support.mqtt import Subscriber
from support.servers import Sshd, free_port
from support.unit_config import faces_folder, write_config
from support.wait import wait_until

from edge.unit import config


class CuttingRelay:
    """A TCP relay to sshd that cuts the connection once the client has sent `limit` bytes: a link that dies."""

    def __init__(self, target_port: int, limit: int):
        self.target_port, self.limit, self.cuts = target_port, limit, 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        sent = 0
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
                sent += len(chunk)
                if counted and sent > self.limit:
                    self.cuts += 1
                    break
        except OSError:
            pass
        for s in (source, sink):  # shutdown first: a close alone waits for the other thread's recv to return
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.server.close()


class Unit:
    def __init__(self, tmp_path: Path, broker, sshd: Sshd):
        self.dir = tmp_path / "unit"
        self.dir.mkdir()
        source = f"{{kind: images, path: {faces_folder(tmp_path)}, loop: true}}"
        self.live = write_config(self.dir, broker.port, "{kind: manual}", source, upsample=0, name="config.yaml")
        self.original = self.live.read_text()
        self.health = Subscriber(broker.port, "traceon/+/+/+/health", "deploy-health-watch")
        self.daemon = Supervised(self.live, tmp_path / "daemon.log")
        self.wait_health(config.fingerprint(self.live), 60)
        self.laptop = tmp_path / "laptop"
        self.laptop.mkdir()
        self.ssh_config = sshd.client_config({"unit-a": sshd.port, "unit-gone": free_port()})

    def latest_health(self) -> str | None:
        reports = [json.loads(p) for _, p, _ in self.health.messages]
        return reports[-1]["config"] if reports else None

    def wait_health(self, fingerprint: str, timeout: float = 30) -> None:
        self.health.wait_for(
            lambda s: self.latest_health() == fingerprint,
            timeout,
            lambda: f"the daemon to report config {fingerprint} (it reports {self.latest_health()})",
        )

    def next_health(self, timeout: float = 10) -> str | None:
        """The config of the next health report the daemon sends (every second)."""
        reports = len(self.health.messages)
        self.health.wait_for(lambda s: len(s.messages) > reports, timeout, "the daemon's next health report")
        return self.latest_health()

    def deploying(self) -> list[int]:
        """The unit's side of a deploy still running: `install-config --live <this config>` processes."""
        running = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):  # gone meanwhile
                args = cmdline.read_bytes().split(b"\0")
                if b"install-config" in args and str(self.live).encode() in args:
                    running.append(int(cmdline.parent.name))
        return running

    def edited(self, name: str, old: str, new: str, text: str | None = None) -> Path:
        """The technician's copy of the config, with one change."""
        text = text if text is not None else self.original
        assert old in text
        path = self.laptop / name
        path.write_text(text.replace(old, new))
        return path

    def deploy(self, *args: str, reload: str | None = None, ssh_config: Path | None = None, timeout=15):
        command = [*CLI, "deploy", "--ssh-config", str(ssh_config or self.ssh_config), "--timeout", str(timeout)]
        command += [
            "--live",
            str(self.live),
            "--remote-command",
            f"env PYTHONPATH={ROOT} {sys.executable} -m edge.cli",  # this checkout's code (sshd clears the env)
            "--unit-user",
            "root",
        ]
        command += ["--reload", reload or f"kill -HUP $(cat {self.daemon.pidfile})", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        print(done.stdout, done.stderr)
        return done

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if ".incoming-" in p.name or ".staged-" in p.name)

    def close(self) -> None:
        self.daemon.stop()
        self.health.close()


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path / "sshd")
    yield server
    server.stop()


@pytest.fixture
def unit(tmp_path, broker, sshd):
    u = Unit(tmp_path, broker, sshd)
    yield u
    u.close()


def test_a_good_config_lands_and_the_health_shows_its_fingerprint(unit):
    new = unit.edited("config.yaml", "frames: 10", "frames: 4")
    fingerprint = config.fingerprint(new)
    done = unit.deploy("unit-a", str(new))
    assert done.returncode == 0
    assert unit.live.read_text() == new.read_text()
    assert (unit.dir / "config.yaml.previous").read_text() == unit.original
    unit.wait_health(fingerprint, 5)
    row = next(line for line in done.stdout.splitlines() if line.startswith("unit-a "))
    assert "applied" in row and fingerprint in row
    assert unit.leftovers() == []
    again = unit.deploy("unit-a", str(new))  # the same file again: nothing to do
    assert again.returncode == 0 and "unchanged" in again.stdout


def test_dry_run_shows_the_diff_and_changes_nothing(unit):
    new = unit.edited("config.yaml", "frames: 10", "frames: 4")
    done = unit.deploy("--dry-run", "unit-a", str(new))
    assert done.returncode == 0
    assert "-burst: {frames: 10" in done.stdout and "+burst: {frames: 4" in done.stdout
    assert "dry-run" in done.stdout
    assert unit.live.read_text() == unit.original
    assert not (unit.dir / "config.yaml.previous").exists()


def test_a_config_valid_locally_but_refused_on_the_unit_changes_nothing(unit):
    old = config.fingerprint(unit.live)
    # The key file exists on the laptop (the structure check does not look) but not on the unit.
    new = unit.edited("config.yaml", str(unit.dir / "unit.key"), "/etc/traceon-edge/no-such.key")
    done = unit.deploy("unit-a", str(new))
    assert done.returncode == 1
    assert "refused" in done.stdout
    assert "facehash.key_file" in done.stdout and "no-such.key" in done.stdout
    assert unit.live.read_text() == unit.original
    assert unit.leftovers() == []
    assert unit.next_health() == old  # the daemon still runs the old config


def test_a_daemon_that_fails_to_come_back_is_rolled_back_to_the_previous_config(unit, tmp_path):
    old = config.fingerprint(unit.live)
    (unit.dir / "blocker").write_text("a file where the outbox folder should be")
    (unit.dir / "outbox-link.sqlite").symlink_to(unit.dir / "blocker" / "outbox.sqlite")
    # Valid everywhere (a dangling link is a place for a new file), but the daemon cannot open its outbox
    # through it and exits at every start.
    new = unit.edited("config.yaml", f"path: {unit.dir / 'outbox.sqlite'}", f"path: {unit.dir}/outbox-link.sqlite")
    starts = unit.daemon.starts
    restart = f"kill -TERM $(cat {unit.daemon.pidfile})"  # `systemctl restart`, with Restart= bringing it back
    done = unit.deploy("unit-a", str(new), reload=restart, timeout=10)
    assert done.returncode == 1
    assert "rolled-back" in done.stdout and f"{old} kept" in done.stdout
    assert unit.live.read_text() == unit.original
    assert unit.daemon.starts >= starts + 2  # it was restarted on the new config (and died), then on the old
    unit.wait_health(old, 10)  # back on its previous config
    assert unit.daemon.process.poll() is None


def test_a_connection_cut_mid_copy_keeps_the_previous_config(unit, sshd):
    old = config.fingerprint(unit.live)
    relay = CuttingRelay(sshd.port, limit=100_000)
    try:
        cut = sshd.client_config({"unit-cut": relay.port})
        padding = "".join(f"# note {i:06d}: {'x' * 60}\n" for i in range(3300))  # ~240 KB: the cut lands mid-copy
        new = unit.edited("config.yaml", "frames: 10", "frames: 4", text=unit.original + padding)
        done = unit.deploy("unit-cut", str(new), ssh_config=cut)
    finally:
        relay.close()
    assert relay.cuts == 1
    assert done.returncode == 1
    assert "connection was lost" in done.stdout and f"the unit still runs config {old}" in done.stdout
    wait_until(lambda: not unit.deploying(), 30, "the unit's side of the cut deploy (install-config) to end")
    assert unit.live.read_text() == unit.original
    assert unit.leftovers() == []
    assert unit.latest_health() == old


def test_several_hosts_from_a_hosts_file_get_a_summary_line_each(unit):
    good = unit.edited("a.yaml", "frames: 10", "frames: 5")
    other = unit.edited("b.yaml", "device: d1", "device: d2")
    hosts = unit.laptop / "units.txt"
    hosts.write_text("# doorway units\nunit-a a.yaml\nunit-gone b.yaml   # switched off today\n")
    done = unit.deploy("--hosts-file", str(hosts))
    assert done.returncode == 1
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("unit-")}
    assert "applied" in rows["unit-a"] and config.fingerprint(good) in rows["unit-a"]
    assert "unreachable" in rows["unit-gone"] and "Connection refused" in rows["unit-gone"]
    assert "1 of 2 unit(s) OK" in done.stdout
    assert unit.live.read_text() == good.read_text() and other.exists()
