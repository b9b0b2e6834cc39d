"""`traceon-edge deploy` and `install-config` on their own: the checks before any connection, and a pushed
config checked with the daemon user's rights. (Deploying over ssh to a running daemon: tests/system/test_deploy.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from support.daemon import CLI
from support.servers import free_port
from support.unit_config import write_config

from edge.core.errors import EX_CONFIG
from edge.field import deploy, install_config


def test_local_checks_refuse_before_any_connection(tmp_path):
    good = write_config(tmp_path, 1883, "{kind: manual}", "{kind: webcam}", name="good.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("burst: {", "burst: {framez: 3, "))
    no_ssh = {**os.environ, "PATH": str(tmp_path / "empty")}  # any ssh call would fail differently
    done = subprocess.run([*CLI, "deploy", "unit-a", str(bad)], capture_output=True, text=True, env=no_ssh)
    assert done.returncode == EX_CONFIG
    assert "not deployed anywhere" in done.stderr and "burst.framez: unknown key" in done.stderr
    hosts = tmp_path / "hosts"
    hosts.write_text("unit-a\nunit-b\n")
    with pytest.raises(deploy.DeployError, match="would both report as unit s1/door/d1"):
        deploy.check_locally(deploy.read_hosts_file(hosts, good))
    assert deploy.parse_host("[::1]:2222") == ("::1", 2222)
    assert deploy.parse_host("pi@door-3:22") == ("pi@door-3", 22)
    with pytest.raises(deploy.DeployError, match="port"):
        deploy.parse_host("door-3:ssh")


def daemon_user_can_run_this_python(user: str) -> bool:
    probe = [sys.executable, "-c", "import edge.cli"]
    try:
        return subprocess.run(probe, preexec_fn=install_config.as_user(user), cwd="/", timeout=60).returncode == 0
    except OSError:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="install-config drops to the daemon's user only when it runs as root")
def test_a_pushed_config_is_checked_with_the_daemon_users_rights_not_roots(tmp_path):
    if not daemon_user_can_run_this_python("nobody"):
        pytest.skip(f"user nobody cannot run {sys.executable} (a folder on its way only root may enter)")
    secrets = tmp_path / "root-only"
    secrets.mkdir(mode=0o700)
    password = secrets / "password"
    password.write_text("root's secret\n")
    password.chmod(0o600)
    live = write_config(tmp_path, free_port(), "{kind: manual}", f"{{kind: images, path: {tmp_path}}}")
    pushed = live.read_text().replace("keepalive: 5", f"keepalive: 5, username: u1, password_file: {password}")
    pushed = pushed.encode()
    command = [*CLI, "install-config", "--live", str(live), "--sha256", hashlib.sha256(pushed).hexdigest()]
    command += ["--size", str(len(pushed)), "--dry-run", "--reload", "true"]
    as_root = subprocess.run([*command, "--as-user", "root"], input=pushed, capture_output=True, timeout=60)
    assert json.loads(as_root.stdout)["result"] == "dry-run", as_root.stderr  # root could read it all
    as_daemon = subprocess.run([*command, "--as-user", "nobody"], input=pushed, capture_output=True, timeout=60)
    result = json.loads(as_daemon.stdout)
    print(result)
    problems = result["message"].splitlines()
    assert result["result"] == "refused"
    assert any(p.strip().startswith("mqtt.password_file: cannot read") and "Permission denied" in p for p in problems)


@pytest.mark.skipif(os.geteuid() != 0, reason="install-config drops to the daemon's user only when it runs as root")
def test_a_pushed_key_is_checked_as_the_daemon_reads_it():
    """keychain.load with the daemon user's rights: a key root can read but the daemon cannot is refused."""
    if not daemon_user_can_run_this_python("nobody"):
        pytest.skip(f"user nobody cannot run {sys.executable} (a folder on its way only root may enter)")
    import tempfile
    from pathlib import Path

    from edge.core import keychain
    from edge.field import pushed_key

    folder = Path(tempfile.mkdtemp(prefix="pushed-key-"))  # pytest's folders are root's alone: nobody gets in
    folder.chmod(0o755)
    key = folder / "unit.key"
    keychain.write_new(key, "1d", 1.8e9)
    nobody = install_config.as_user("nobody")
    assert pushed_key.check(key, None) is None  # root reads it
    assert "Permission denied" in pushed_key.check(key, nobody)
    os.chown(key, *pushed_key.daemon_ids("nobody"))
    assert pushed_key.check(key, nobody) is None
    key.write_text("not a key\n")
    assert "neither a traceon-edge key nor a key chain" in pushed_key.check(key, nobody)
    key.unlink()
    folder.rmdir()
