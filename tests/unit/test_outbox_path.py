"""outbox.path names a file the daemon can keep its events in: a FIFO, a device or a folder there, or a file
where a folder must be made, is refused by check-config and by run (exit 78) before anything starts."""

from __future__ import annotations

import os
import subprocess

import pytest
from support.daemon import CLI
from support.unit_config import config_text

from edge.core.errors import EX_CONFIG


def outboxes(files):
    """name → (outbox.path, what the refusal says)."""
    fifo = files / "fifo"
    os.mkfifo(fifo)
    (files / "folder").mkdir()
    (files / "plain").write_text("not a folder\n")
    return {
        "fifo": (fifo, f"outbox file {fifo} is a FIFO (named pipe): name a file the daemon may make"),
        "/dev/full": ("/dev/full", "outbox file /dev/full is a character device: name a file the daemon may make"),
        "folder": (
            files / "folder",
            f"is a folder: name a file the daemon may make, e.g. {files}/folder/outbox.sqlite",
        ),
        "under a file": (
            files / "plain" / "outbox.sqlite",
            f"outbox file {files}/plain/outbox.sqlite cannot be made: {files}/plain is a regular file, not a folder",
        ),
    }


def with_outbox(files, outbox) -> str:
    path = files / "unit.yaml"
    path.write_text(config_text(files).replace(str(files / "outbox.sqlite"), str(outbox)))
    return str(path)


@pytest.mark.parametrize("name", ["fifo", "/dev/full", "folder", "under a file"])
@pytest.mark.parametrize("command", [["check-config"], ["run", "--config"]], ids=["check-config", "run"])
def test_an_outbox_path_that_cannot_hold_the_outbox_exits_78_saying_why(files, command, name):
    outbox, said = outboxes(files)[name]
    done = subprocess.run([*CLI, *command, with_outbox(files, outbox)], capture_output=True, text=True, timeout=60)
    assert done.returncode == EX_CONFIG, done.stderr
    assert "outbox.path: " in done.stderr and said in done.stderr


@pytest.mark.parametrize("outbox", ["outbox.sqlite", "new/folders/outbox.sqlite"])
def test_an_existing_outbox_or_one_in_folders_the_daemon_makes_is_valid(files, outbox):
    (files / "outbox.sqlite").write_bytes(b"")  # an existing (here empty) outbox
    done = subprocess.run([*CLI, "check-config", with_outbox(files, files / outbox)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
