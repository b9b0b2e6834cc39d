"""`deploy` and `check-config` read only a regular file of a config's size: a FIFO, a device, a folder or a
huge file is refused at once (as a process with a deadline: a hang fails the test, it does not stall it)."""

from __future__ import annotations

import os
import subprocess

import pytest
from support.daemon import CLI
from support.unit_config import write_config

from edge.core import files
from edge.core.errors import EX_CONFIG
from edge.unit.config import MAX_BYTES


@pytest.fixture
def odd_files(tmp_path):
    """name → (path, what the refusal says it is)."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opened for reading as usual, it waits for a writer forever
    good = write_config(tmp_path, 1883, "{kind: manual}", "{kind: webcam}", name="good.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_text(good.read_text() + "#" * MAX_BYTES + "\n")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    return {
        "fifo": (fifo, "is a FIFO (named pipe), not a regular file"),
        "zero": ("/dev/zero", "is a character device, not a regular file"),  # read whole, it fills the memory
        "folder": (folder, "is a folder, not a regular file"),
        "huge": (huge, f"is larger than a traceon-edge config can be ({MAX_BYTES:,} bytes)"),
    }


@pytest.mark.parametrize("name", ["fifo", "zero", "folder", "huge"])
@pytest.mark.parametrize("command", ["check-config", "deploy"])
def test_what_is_not_a_config_file_is_refused_at_once(tmp_path, odd_files, name, command):
    path, said = odd_files[name]
    args = [*CLI, "check-config", str(path)] if command == "check-config" else [*CLI, "deploy", "unit-a", str(path)]
    no_ssh = {**os.environ, "PATH": str(tmp_path / "empty")}  # deploy must refuse before it looks for ssh
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, env=no_ssh)
    assert done.returncode == EX_CONFIG, done.stderr
    assert f"config file {path} {said}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_hosts_file_that_is_a_fifo_is_refused_at_once(tmp_path, odd_files):
    path, _ = odd_files["fifo"]
    good = tmp_path / "good.yaml"
    done = subprocess.run(
        [*CLI, "deploy", "--hosts-file", str(path), str(good)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0 and f"hosts file {path} is a FIFO (named pipe), not a regular file" in done.stderr


def test_the_shared_reader_takes_a_file_of_exactly_the_limit_and_keeps_links_to_the_caller(tmp_path):
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 100)
    assert files.read_regular(exact, 100, "a test file") == b"x" * 100
    with pytest.raises(ValueError, match=r"larger than a test file can be \(99 bytes\)"):
        files.read_regular(exact, 99, "a test file")
    link = tmp_path / "link"
    link.symlink_to(exact)
    assert files.read_regular(link, 100, "a test file") == b"x" * 100
    with pytest.raises(OSError):
        files.read_regular(link, 100, "a test file", follow_links=False)
