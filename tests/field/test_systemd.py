"""The systemd unit: `systemd-analyze verify` passes and the offline security exposure stays low."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.data import ROOT

UNIT = ROOT / "systemd" / "traceon-edge.service"
COLLECT = ROOT / "systemd" / "traceon-collect.service"


@pytest.fixture(params=[UNIT, COLLECT], ids=["unit", "collector"])
def installed_unit(request, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed on this machine")
    executable = Path(sys.executable).parent / "traceon-edge"
    unit = tmp_path / request.param.name
    text = request.param.read_text().replace("/opt/traceon-edge/venv/bin/traceon-edge", str(executable))
    environment = tmp_path / "collect.env"
    environment.write_text((ROOT / "config" / "collect.env").read_text())
    unit.write_text(text.replace("/etc/traceon-edge/collect.env", str(environment)))
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
