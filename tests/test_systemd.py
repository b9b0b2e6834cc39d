"""The systemd unit: `systemd-analyze verify` passes and the offline security exposure stays low."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

UNIT = ROOT / "systemd" / "traceon-edge.service"


@pytest.fixture
def installed_unit(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed on this machine")
    executable = Path(sys.executable).parent / "traceon-edge"
    unit = tmp_path / "traceon-edge.service"
    unit.write_text(UNIT.read_text().replace("/opt/traceon-edge/venv/bin/traceon-edge", str(executable)))
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
