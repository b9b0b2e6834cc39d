"""The systemd units: `systemd-analyze verify` passes and the offline security exposure stays low."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.data import ROOT, need_data

UNIT = ROOT / "systemd" / "traceon-edge.service"
COLLECT = ROOT / "systemd" / "traceon-collect.service"
CONSOLE = ROOT / "systemd" / "traceon-console.service"


@pytest.fixture(params=[UNIT, COLLECT, CONSOLE], ids=["unit", "collector", "console"])
def installed_unit(request, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed on this machine")
    executable = Path(sys.executable).parent / "traceon-edge"
    unit = tmp_path / request.param.name
    text = request.param.read_text().replace("/opt/traceon-edge/venv/bin/traceon-edge", str(executable))
    for name in ("collect.env", "console.env"):
        environment = tmp_path / name
        environment.write_text((ROOT / "config" / name).read_text())
        text = text.replace(f"/etc/traceon-edge/{name}", str(environment))
    unit.write_text(text)
    return unit


def test_the_unit_verifies(installed_unit):
    result = subprocess.run(["systemd-analyze", "verify", str(installed_unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_the_unit_is_hardened(installed_unit):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(installed_unit)], capture_output=True, text=True
    )
    score = re.search(r"Overall exposure level for .*: ([0-9.]+)", result.stdout)
    if result.returncode != 0 or not score:
        pytest.skip(f"this systemd cannot score units offline: {result.stderr.strip()[:120]}")
    assert float(score.group(1)) <= 2.5


def test_the_unit_runs_as_a_service_user_with_camera_and_gpio_only():
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "SupplementaryGroups=video gpio",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=traceon-edge",
        "DevicePolicy=closed",
        "RestartPreventExitStatus=78",
    ):
        assert line in text


def test_the_collector_unit_is_hardened_like_the_units_and_reaches_no_device():
    unit, collector = UNIT.read_text(), COLLECT.read_text()
    hardening = [line for line in unit.splitlines() if line.startswith(("Protect", "Restrict", "SystemCall", "NoNew"))]
    assert hardening and all(line in collector for line in hardening)
    assert "DeviceAllow" not in collector and "PrivateDevices=yes" in collector
    assert "RestartPreventExitStatus=78" in collector and "User=traceon" in collector


def test_the_console_unit_is_hardened_like_the_collector_and_listens_on_loopback_only():
    collector, console = COLLECT.read_text(), CONSOLE.read_text()
    hardening = [
        line
        for line in collector.splitlines()
        if line.startswith(("Protect", "Restrict", "SystemCall", "NoNew", "Private", "MemoryDeny", "Capability"))
    ]
    assert len(hardening) >= 20 and all(line in console.splitlines() for line in hardening)
    assert "DeviceAllow" not in console and "DevicePolicy=closed" in console
    assert "RestartPreventExitStatus=78" in console and "User=traceon" in console and "UMask=0077" in console
    (start,) = [line for line in console.splitlines() if line.startswith("ExecStart=")]
    assert " console --db ${TRACEON_CONSOLE_DB} --audit-key /etc/traceon-edge/audit.key " in start
    assert "--host 127.0.0.1 --port 8080" in start
    # a spooled upload lands in /run (memory), not on a disk
    assert "Environment=TMPDIR=/run/traceon-console" in console and "RuntimeDirectory=traceon-console" in console


def test_the_console_unit_reads_the_options_the_console_command_has():
    """Every option in the unit and its example environment file is one `traceon-edge console` accepts."""
    shown = subprocess.run([sys.executable, "-m", "edge.cli", "console", "--help"], capture_output=True, text=True)
    if shown.returncode != 0:
        pytest.skip("this checkout has no `console` command yet")
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", shown.stdout))
    env = (ROOT / "config" / "console.env").read_text()
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", CONSOLE.read_text() + env))
    assert used and used <= options, used - options


MDWE_RUN = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux 6.3)
    print("unsupported"); sys.exit(0)
import argon2, jinja2, starlette.applications, uvicorn
argon2.PasswordHasher().hash("twelve chars!")
jinja2.Environment(autoescape=True).from_string("{{ x }}").render(x="<b>")
from edge.console import photos
from edge.core.facehash import Key
if photos.available()[0]:
    data = open(sys.argv[1], "rb").read()
    print("photos", photos.hash_photos([("a.jpg", data)], [Key(bytes(32))]).photos)
print("ran")
"""


def test_the_consoles_stack_runs_with_memory_that_is_never_writable_and_executable():
    """MemoryDenyWriteExecute=yes, as the kernel's own per-process switch (PR_SET_MDWE) sets it: argon2, jinja2,
    uvicorn and a photo trace (OpenCV, dlib, LiteRT) all run."""
    pytest.importorskip("starlette")
    photo = need_data("faces", "amy_adams", "1.jpg")
    result = subprocess.run(
        [sys.executable, "-c", MDWE_RUN, str(photo)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    if result.stdout.strip() == "unsupported":
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or later)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-3:] == ["photos", "1", "ran"]
