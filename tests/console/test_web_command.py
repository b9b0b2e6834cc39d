"""`traceon-edge console` as a process: it serves the pages with their headers, and a missing key is a clear exit."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
from servers import free_port
from support.wait import wait_until

from edge.console.audit import AuditKey
from edge.tracer import store


def test_the_command_serves_the_console_until_interrupted(tmp_path):
    db = tmp_path / "sightings.db"
    store.open_store(str(db)).close()
    AuditKey.generate(tmp_path / "audit.key")
    port = free_port()
    command = [sys.executable, "-m", "edge.cli", "console", "--db", str(db), "--audit-key", str(tmp_path / "audit.key")]
    process = subprocess.Popen([*command, "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:

        def login_page():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
            except httpx.TransportError:
                return None

        page = wait_until(login_page, 30, "the console to answer /login")
        assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
        assert "server" not in page.headers  # no software banner
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
    assert "Traceback" not in process.stderr.read()


def test_a_missing_audit_key_is_a_configuration_error(tmp_path):
    answer = subprocess.run(
        [sys.executable, "-m", "edge.cli", "console", "--db", str(tmp_path / "x.db"), "--audit-key",
         str(tmp_path / "none.key")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert answer.returncode == 78
    assert "traceon-edge audit keygen" in answer.stderr and "Traceback" not in answer.stderr
