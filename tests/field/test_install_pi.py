"""tools/install-pi.sh: a dry run prints every step and changes nothing; a 32-bit target is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.data import ROOT

SCRIPT = ROOT / "tools" / "install-pi.sh"


def run(*args):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_a_dry_run_for_64_bit_prints_every_step_and_changes_nothing():
    touched = [Path("/opt/traceon-edge"), Path("/etc/traceon-edge"), Path("/etc/systemd/system/traceon-edge.service")]
    before = [p.exists() for p in touched]
    result = run("--dry-run", "--arch", "arm64", "--os", "raspios")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "apt-get install -y python3-venv python3-pip mosquitto-clients python3-picamera2 python3-lgpio",
        "usermod -aG video,gpio traceon",
        "python3 -m venv --system-site-packages /opt/traceon-edge/venv",
        f"/opt/traceon-edge/venv/bin/pip install --quiet --upgrade {ROOT}[unit]",
        "chmod 0600 /etc/traceon-edge/facehash.key",
        "install -m 0644 " + str(ROOT / "systemd" / "traceon-edge.service"),
        "systemctl enable traceon-edge",
        "systemctl restart traceon-edge",
    ):
        assert expected in out
    assert [p.exists() for p in touched] == before


def test_plain_debian_arm64_gets_no_raspberry_pi_os_packages_and_is_told_what_works():
    result = run("--dry-run", "--arch", "arm64", "--os", "debian")
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y python3-venv python3-pip mosquitto-clients\n" in result.stdout
    assert "picamera2 and python3-lgpio exist only in" in result.stdout
    assert "USB webcam" in result.stdout and "GPIOZERO_PIN_FACTORY=native" in result.stdout


def test_the_system_is_detected_and_a_wrong_os_is_refused():
    detected = run("--dry-run", "--arch", "arm64")  # this machine: Debian, or Raspberry Pi OS on a Pi
    assert detected.returncode == 0
    assert ("python3-lgpio" in detected.stdout.split("apt-get install")[1].split("\n")[0]) == (
        Path("/etc/rpi-issue").exists()
    )
    wrong = run("--dry-run", "--os", "ubuntu")
    assert wrong.returncode == 2 and "--os must be raspios or debian" in wrong.stderr


@pytest.mark.parametrize("arch", ["armhf", "armv7l", "armel"])
def test_a_32_bit_target_is_refused_with_the_reason(arch):
    result = run("--dry-run", "--arch", arch)
    assert result.returncode == 3
    assert f"this is a 32-bit system ({arch})" in result.stderr
    assert "64-bit Raspberry Pi OS" in result.stderr
    assert result.stdout == ""


def test_an_unknown_option_is_refused():
    result = run("--dryrun")
    assert result.returncode == 2 and "unknown option --dryrun" in result.stderr
