"""`traceon-edge deploy --key-file`: a new key or key chain pushed with the config over ssh, to real daemons.

Each unit is a "machine" of its own: a daemon (restarted like systemd's Restart= does) in its own folder, and an
sshd whose logins land in that folder, so that one deploy reaches both with the same `--live config.yaml` and
`--reload`, as a fleet's units share /etc/traceon-edge/config.yaml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import CLI, Supervised
from support.data import ROOT
from support.mqtt import Subscriber
from support.servers import Sshd, listening
from support.unit_config import faces_folder, write_config
from support.wait import wait_until

from edge.core import facehash, keychain
from edge.unit import config


class Machine:
    """A unit's daemon in `folder` and an sshd that runs every command there."""

    def __init__(self, tmp_path: Path, name: str, broker, key_text: str):
        self.name, self.dir = name, tmp_path / name
        self.dir.mkdir()
        (self.dir / "unit.key").write_text(key_text)
        (self.dir / "unit.key").chmod(0o600)
        source = f"{{kind: images, path: {faces_folder(self.dir)}, loop: true}}"
        self.live = write_config(self.dir, broker.port, "{kind: manual}", source, upsample=0, name="config.yaml")
        self.live.write_text(self.live.read_text().replace("device: d1", f"device: {name}"))
        self.original, self.old_key = self.live.read_text(), (self.dir / "unit.key").read_bytes()
        self.health = Subscriber(broker.port, f"traceon/s1/door/{name}/health", f"deploy-keys-{name}")
        self.daemon = Supervised(self.live, tmp_path / f"{name}.log")
        self.sshd = Sshd(tmp_path / f"sshd-{name}")
        self._land_in_folder()

    def _land_in_folder(self) -> None:
        """sshd restarted with a ForceCommand that runs the asked command in the unit's folder."""
        self.sshd.stop()
        conf = self.sshd.dir / "sshd_config"
        conf.write_text(conf.read_text() + f'ForceCommand cd {self.dir} && exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n')
        self.sshd.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf], stderr=subprocess.DEVNULL)
        wait_until(lambda: listening(self.sshd.port), 10, f"sshd to listen on port {self.sshd.port}")

    def reported(self) -> dict:
        return json.loads(self.health.messages[-1][1]) if self.health.messages else {}

    def wait_key(self, key_id: str, timeout: float = 30) -> None:
        self.health.wait_for(
            lambda s: self.reported().get("key_id") == key_id,
            timeout,
            lambda: f"{self.name} to report key id {key_id} (it reports {self.reported().get('key_id')})",
        )

    def key(self) -> Path:
        return self.dir / "unit.key"

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if ".incoming-" in p.name)

    def close(self) -> None:
        self.daemon.stop()
        self.health.close()
        self.sshd.stop()


def ssh_config(tmp_path: Path, machines: list[Machine]) -> Path:
    """One laptop's ssh_config reaching every machine by its name (each sshd trusts the same laptop key)."""
    first = machines[0].sshd
    for m in machines[1:]:
        (m.sshd.dir / "authorized_keys").write_text((first.dir / "client_key.pub").read_text())
        (m.sshd.dir / "host_key").write_bytes((first.dir / "host_key").read_bytes())
        (m.sshd.dir / "host_key.pub").write_bytes((first.dir / "host_key.pub").read_bytes())
        m._land_in_folder()  # again, now with the shared host key
    return first.client_config({m.name: m.sshd.port for m in machines})


def deploy(ssh: Path, *args: str, reload: str = "kill -HUP $(cat daemon.pid)", timeout: float = 15):
    command = [*CLI, "deploy", "--ssh-config", str(ssh), "--timeout", str(timeout), "--live", "config.yaml"]
    # this checkout's code on the unit side too (sshd gives the session a clean environment)
    remote = f"env PYTHONPATH={ROOT} {sys.executable} -m edge.cli"
    command += ["--remote-command", remote, "--unit-user", "root", "--reload", reload]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)
    print(done.stdout, done.stderr)
    return done


def laptop_key(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "laptop" / "new.key"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def machines(tmp_path, broker):
    made = []

    def make(*names: str, old: str | None = None) -> list[Machine]:
        for name in names:
            key = old or keychain.Chain(facehash.Key(os.urandom(32))).text()
            made.append(Machine(tmp_path, name, broker, key))  # listed first: closed even if it never starts
            made[-1].wait_key(keychain.parse(key, tmp_path).key.id, 60)
        return made

    yield make
    for m in made:
        m.close()


def new_key_text(kind: str) -> str:
    """A chain holding today's epoch, or a plain key (a chain that never moves)."""
    import time

    chain = keychain.Chain(facehash.Key(os.urandom(32)), "1d" if kind == "chain" else None)
    return keychain.Chain(chain.key, chain.length, chain.epoch_of(time.time())).text()


@pytest.mark.parametrize("kind", ["chain", "plain key"])
def test_a_new_chain_reaches_one_unit_and_the_other_is_rolled_back_to_its_old_chain(tmp_path, machines, kind):
    """Must show 6: a new chain pushed to two units, one of which refuses its config after the chain is in place."""
    old_chain, new_chain = (keychain.parse(new_key_text(kind), tmp_path) for _ in range(2))
    (tmp_path / "new.chain").write_text(new_chain.text())
    (tmp_path / "new.chain").chmod(0o600)
    door_a, door_b = machines("door-a", "door-b", old=old_chain.text())
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    (laptop / "a.yaml").write_text(door_a.original.replace("frames: 10", "frames: 4"))
    missing = door_b.dir / "no-such-password"  # valid on the laptop (structure only), refused on door-b
    broken = door_b.original.replace("keepalive: 5", f"keepalive: 5, username: d2, password_file: {missing}")
    (laptop / "b.yaml").write_text(broken)
    (laptop / "units.txt").write_text("door-a a.yaml\ndoor-b b.yaml\n")
    done = deploy(
        ssh_config(tmp_path, [door_a, door_b]),
        "--hosts-file",
        str(laptop / "units.txt"),
        "--key-file",
        str(tmp_path / "new.chain"),
    )
    assert done.returncode == 1
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("door-")}
    assert "applied" in rows["door-a"] and new_chain.key.id in rows["door-a"]
    assert "refused" in rows["door-b"] and f"{old_chain.key.id} kept" in rows["door-b"]
    assert "password_file" in done.stdout and "the key file is back as it was" in done.stdout
    door_a.wait_key(new_chain.key.id, 5)
    assert keychain.parse(door_a.key().read_text(), door_a.key()).key.id == new_chain.key.id
    assert door_a.key().stat().st_mode & 0o777 == 0o600 and door_a.key().stat().st_uid == os.geteuid()
    assert door_b.key().read_bytes() == door_b.old_key and door_b.live.read_text() == door_b.original
    assert door_b.key().stat().st_mode & 0o777 == 0o600
    assert door_b.reported()["key_id"] == old_chain.key.id and door_a.leftovers() == door_b.leftovers() == []
    print(f"\n{kind}: old key id {old_chain.key.id}, pushed {new_chain.key.id}")
    print("| unit | result | key id in its health | key file |\n|---|---|---|---|")
    for m, result in ((door_a, "applied"), (door_b, "refused, rolled back")):
        held = "the pushed one" if m.key().read_text() == new_chain.text() else "its old one, byte for byte"
        print(f"| {m.name} | {result} | {m.reported()['key_id']} | {held} |")


def test_a_daemon_that_fails_on_the_new_config_gets_its_old_key_back_byte_for_byte(tmp_path, machines):
    (door,) = machines("door-a")
    old_id = door.reported()["key_id"]
    (door.dir / "blocker").write_text("a file where the outbox folder should be")
    (door.dir / "outbox-link.sqlite").symlink_to(door.dir / "blocker" / "outbox.sqlite")
    new = door.original.replace(f"path: {door.dir / 'outbox.sqlite'}", f"path: {door.dir}/outbox-link.sqlite")
    (tmp_path / "new.yaml").write_text(new)  # valid everywhere, but the daemon exits at every start on it
    new_key = keychain.Chain(facehash.Key(os.urandom(32)))
    restart = "kill -TERM $(cat daemon.pid)"  # `systemctl restart`, with Restart= bringing it back
    done = deploy(
        ssh_config(tmp_path, [door]),
        "door-a",
        str(tmp_path / "new.yaml"),
        "--key-file",
        str(laptop_key(tmp_path, new_key.text())),
        reload=restart,
        timeout=10,
    )
    assert done.returncode == 1 and "rolled-back" in done.stdout and f"{old_id} kept" in done.stdout
    assert door.key().read_bytes() == door.old_key and door.live.read_text() == door.original
    door.wait_key(old_id, 10)
    assert door.leftovers() == []


def test_a_new_key_the_daemon_does_not_pick_up_is_not_confirmed(tmp_path, machines):
    """The config is unchanged, so its fingerprint proves nothing: only the key id in the health can."""
    (door,) = machines("door-a")
    old_id = door.reported()["key_id"]
    key = laptop_key(tmp_path, keychain.Chain(facehash.Key(os.urandom(32))).text())
    (tmp_path / "same.yaml").write_text(door.original)
    done = deploy(
        ssh_config(tmp_path, [door]),
        "door-a",
        str(tmp_path / "same.yaml"),
        "--key-file",
        str(key),
        reload="true",
        timeout=4,
    )
    assert done.returncode == 1 and "rolled-back" in done.stdout
    assert "not the pushed key's" in done.stdout
    assert door.key().read_bytes() == door.old_key
    again = deploy(ssh_config(tmp_path, [door]), "door-a", str(tmp_path / "same.yaml"), "--key-file", str(key))
    assert again.returncode == 0 and "applied" in again.stdout  # with a real reload it lands
    new_id = keychain.load(key).key.id
    door.wait_key(new_id, 5)
    assert new_id != old_id and new_id in again.stdout


def test_a_key_file_that_cannot_be_written_changes_nothing(tmp_path, machines):
    (door,) = machines("door-a")
    elsewhere = door.original.replace(str(door.key()), str(door.dir / "no-such-folder" / "unit.key"))
    (tmp_path / "new.yaml").write_text(elsewhere)
    key = laptop_key(tmp_path, keychain.Chain(facehash.Key(os.urandom(32))).text())
    done = deploy(ssh_config(tmp_path, [door]), "door-a", str(tmp_path / "new.yaml"), "--key-file", str(key))
    assert done.returncode == 1 and "refused" in done.stdout
    assert "cannot write the key file" in done.stdout and "No such file or directory" in done.stdout
    assert door.live.read_text() == door.original and door.key().read_bytes() == door.old_key
    assert config.fingerprint(door.live) == door.reported()["config"]
