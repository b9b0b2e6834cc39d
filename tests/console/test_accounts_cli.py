"""`traceon-edge users …` and `audit list`: passwords never from argv, never a hash printed, every change audited."""

from __future__ import annotations

import getpass
import os
import pwd
import subprocess
import sys

import pytest
from support.console_db import PASSWORD

from edge.console import accounts, audit
from edge.console.audit import AuditKey
from edge.console.db import ConsoleDb


def cli(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


@pytest.fixture
def place(tmp_path):
    key = tmp_path / "audit.key"
    made = cli("audit", "keygen", key)
    assert made.returncode == 0, made.stderr
    return str(tmp_path / "sightings.sqlite"), key


def test_users_are_added_changed_and_listed_and_each_change_is_audited(place):
    db_url, key = place
    common = ("--db", db_url, "--audit-key", key)
    add = cli("users", "add", "ann", "--role", "tracer", "--sites", "north,east", "--password-stdin", *common,
              stdin=PASSWORD + "\n")  # fmt: skip
    assert add.returncode == 0 and add.stdout.strip() == "added ann (tracer, sites: east,north)", add.stderr
    assert "audit head seq=1 mac=" in add.stderr  # the journal's copy of the head
    assert cli("users", "add", "bob", "--role", "auditor", "--password-stdin", *common, stdin=PASSWORD).returncode == 0
    assert cli("users", "passwd", "ann", "--password-stdin", *common, stdin=PASSWORD + " new\n").returncode == 0
    assert cli("users", "disable", "bob", *common).returncode == 0
    listed = cli("users", "list", "--db", db_url)
    assert listed.stdout.splitlines() == [
        "ann  tracer   enabled   sites: east,north",
        "bob  auditor  disabled  sites: all",
    ]
    assert "argon2" not in listed.stdout
    db = ConsoleDb.open(db_url, audit_key=AuditKey.load(key))
    me = f"server:{pwd.getpwuid(os.geteuid()).pw_name}"
    assert [(e.user, e.action) for e in reversed(audit.entries(db))] == [(me, "user-added")] * 2 + [
        (me, "user-changed")
    ] * 2
    assert accounts.login(db, "ann", PASSWORD + " new", "10.0.0.1").user is not None
    db.close()
    shown = cli("audit", "list", "--db", db_url, "--action", "login").stdout
    assert "login  10.0.0.1" in shown and "user-added" not in shown


def test_refusals_are_one_clear_line_and_change_nothing(place, tmp_path):
    db_url, key = place
    common = ("--db", db_url, "--audit-key", key)
    cases = [
        (("users", "add", "ann", "--role", "tracer", "--password-stdin", *common), "short\n", "at least 12 characters"),
        (("users", "add", "ann", "--role", "tracer", *common), None, "--password-stdin"),  # no terminal to ask on
        (("users", "add", "a b", "--role", "tracer", "--password-stdin", *common), PASSWORD, "not a user name"),
        (("users", "add", "ann", "--role", "tracer", "--sites", "a/b", "--password-stdin", *common), PASSWORD,
         "not a site name"),
        (("users", "disable", "nobody", *common), None, "there is no user 'nobody'"),
        (("users", "disable", "ann", "--db", db_url, "--audit-key", tmp_path / "none"), None, "does not exist"),
        (("audit", "keygen", key), None, "never overwritten"),
        (("audit", "verify", "--db", db_url, "--audit-key", key, "--head", "x:y"), None, "is not a head"),
        (("audit", "list", "--db", db_url, "--since", "yesterday"), None, "not a duration"),
    ]  # fmt: skip
    for args, stdin, message in cases:
        run = cli(*args, stdin=stdin)
        assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr, (args, run.stderr)
    assert cli("users", "list", "--db", db_url).stdout.startswith("no users yet")
    key.chmod(0o644)
    loose = cli("users", "add", "ann", "--role", "tracer", "--password-stdin", *common, stdin=PASSWORD)
    assert loose.returncode != 0 and "chmod 600" in loose.stderr


def test_the_password_is_never_an_argument():
    run = cli("users", "add", "ann", "--role", "tracer", "--password", PASSWORD, "--db", "x", "--audit-key", "k")
    assert run.returncode == 2 and "unrecognized arguments" in run.stderr
    assert getpass.getuser()  # the CLI audits changes as server:<this user>
