"""`status` and `install-config` when the daemon runs but cannot write its health file, or the file is hostile."""

from __future__ import annotations

import io
import json
import os
import pwd
import shutil

import pytest
from support.daemon import DaemonProcess
from support.disk import fill
from support.health import good_health
from support.mqtt import Subscriber
from support.unit_config import unit_config
from support.wait import wait_until

from edge.core import health_file
from edge.field import install_config, status, unwritable
from edge.unit import config

# chmod does not stop root: as root the daemon runs without the powers that override file modes, as a
# unit's daemon (user traceon) runs without them
AS_A_USER = (
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search,-fowner",
    "--bounding-set=-dac_override,-dac_read_search,-fowner",
)


def test_a_daemon_that_cannot_write_its_health_file_is_running_and_its_new_config_is_kept(tmp_path, broker):
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.fail("setpriv (util-linux) is needed to run the daemon without root's override of file modes")
    box = tmp_path / "box"
    box.mkdir()
    path = unit_config(tmp_path, broker.port, outbox=box / "outbox.sqlite")
    cfg = config.load(path)
    events = Subscriber(broker.port, "traceon/+/+/+/events")
    unit = DaemonProcess(path, tmp_path / "daemon.log", AS_A_USER if os.geteuid() == 0 else ())
    try:
        wait_until(health_file.path_beside(cfg.outbox.path).exists, 60, "the daemon's first health report")
        box.chmod(0o555)
        sent = len(events.events())
        report = wait_until(lambda: (r := status.gather(path)).get("health_file") and r, 30, "status to see it")
        events.wait_for(lambda s: len(s.events()) > sent + 2, 30, "events delivered after the folder turned read-only")
        new = path.read_bytes().replace(b"seconds: 0.5", b"seconds: 0.6")
        out = io.StringIO()
        code = install_config.install(
            path, install_config.hashlib.sha256(new).hexdigest(), len(new), f"kill -HUP {unit.process.pid}", 3.0,
            stdin=io.BytesIO(new), out=out, user="root",
        )  # fmt: skip
        after = status.gather(path)
    finally:
        box.chmod(0o755)
        unit.stop()
        events.close()
    readable = status.render(report)
    print(readable, out.getvalue(), sep="\n")
    assert report["daemon"] == "running"
    assert f"running, but cannot write its health file: the folder {box} is read-only" in readable
    assert "(mode 0555)" in readable
    outcome = json.loads(out.getvalue().splitlines()[-1])
    assert code == 1 and outcome["result"] == "unconfirmed" and "cannot write its health file" in outcome["message"]
    assert path.read_bytes() == new  # not rolled back
    assert after["daemon"] == "running" and after["health_file"]
    assert status.gather(path)["daemon"] == "stopped"  # stopped, the lock is gone (and its last report written)


def test_status_escapes_what_the_health_file_says_and_refuses_an_invalid_one(tmp_path):
    path = unit_config(tmp_path, 1)
    health = health_file.path_beside(config.load(path).outbox.path)
    health_file.write(health, good_health(camera="stuck\x1b[2J\x1b]0;owned\x07", broker="\x9b31mdown"))
    readable = status.render(status.gather(path))
    assert "camera      stuck\\x1b[2J\\x1b]0;owned\\x07" in readable and "daemon says: \\x9b31mdown" in readable
    assert "\x1b" not in readable and "\x07" not in readable and "\x9b" not in readable
    health_file.write(health, good_health(camera=5))
    report = status.gather(path)
    assert report["daemon"] == "unknown" and "health" not in report
    assert "daemon      unknown: the health report is invalid: camera: must be string" in status.render(report)


def test_a_full_disk_is_named_as_what_keeps_the_daemon_from_writing(small_disk):
    filler = fill(small_disk)
    assert unwritable.why(small_disk, os.getuid()) == f"the disk holding {small_disk} is full"
    filler.unlink()
    assert "looks writable" in unwritable.why(small_disk, os.getuid())


def test_a_folder_read_only_for_the_daemons_user_is_named(tmp_path):
    tmp_path.chmod(0o555)
    try:
        said = unwritable.why(tmp_path, os.getuid())
    finally:
        tmp_path.chmod(0o755)
    assert (
        said
        == f"the folder {tmp_path} is read-only for the daemon's user {pwd.getpwuid(os.getuid()).pw_name} (mode 0555)"
    )
