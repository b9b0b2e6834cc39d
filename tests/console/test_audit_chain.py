"""The audit log: rows chained under a key the database never holds; verify names what was tampered with."""

# ruff: noqa: F811  (the fixtures are imported from tests/support, then named as test arguments)

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys

import pytest
from support.console_db import audit_key, console_db, console_url, key_file  # noqa: F401  (fixtures)

from edge.console import audit
from edge.console.audit import AuditKey
from edge.console.db import ConsoleDb
from edge.core.errors import AuditError


def fill(db, key, n: int) -> None:
    for i in range(n):
        with db.transaction() as tx:
            audit.record(tx, key, f"user{i % 3}", "login", "10.0.0.1", {"i": i}, now_ms=1_000 + i)


def raw(db, sql: str, params=()):
    """A statement straight into the database, as someone who holds the file or the owner's role would."""
    with db.transaction() as tx:
        if tx.kind == "sqlite":  # the triggers stop a careless UPDATE; an attacker drops them first
            tx.execute("DROP TRIGGER IF EXISTS audit_no_update")
            tx.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        return tx.execute(sql, params)


def rechain_without_key(db, from_seq: int) -> None:
    """What a script with the database but not the key can do: rewrite a row, and recompute every MAC from
    there on with the best stand-in it has (a plain hash of the same bytes)."""
    with db.transaction() as tx:
        rows = tx.query('SELECT seq, at_ms, "user", action, address, detail, mac FROM audit ORDER BY seq')
    previous = next((r[6] for r in rows if r[0] == from_seq - 1), "")
    for seq, at_ms, user, action, address, detail, _ in rows:
        if seq < from_seq:
            continue
        if seq == from_seq:
            detail = json.dumps({"i": "nothing happened here"})
        mac = hashlib.sha256(previous.encode() + audit.canonical(seq, at_ms, user, action, address, detail)).hexdigest()
        raw(db, "UPDATE audit SET detail = ?, mac = ? WHERE seq = ?", (detail, mac, seq))
        previous = mac


def test_a_clean_log_verifies_and_lists_newest_first(console_db, audit_key):
    fill(console_db, audit_key, 6)
    assert audit.verify(console_db, audit_key) == []
    listed = audit.entries(console_db)
    assert [e.seq for e in listed] == [6, 5, 4, 3, 2, 1]
    assert listed[0].detail == {"i": 5} and listed[0].address == "10.0.0.1"
    assert [e.seq for e in audit.entries(console_db, user="user1")] == [5, 2]
    assert [e.seq for e in audit.entries(console_db, since_ms=1_003, until_ms=1_005)] == [5, 4]
    assert audit.entries(console_db, action="trace") == []
    assert [e.seq for e in audit.entries(console_db, limit=2)] == [6, 5]


def test_a_changed_a_deleted_and_a_rechained_row_are_each_named(console_db, audit_key):
    fill(console_db, audit_key, 12)
    raw(console_db, "UPDATE audit SET address = ? WHERE seq = 3", ("192.0.2.9",))
    raw(console_db, "DELETE FROM audit WHERE seq = 6")
    rechain_without_key(console_db, 9)
    problems = audit.verify(console_db, audit_key)
    assert [(p.seq, p.why.split(":")[0]) for p in problems] == [(3, "changed"), (6, "missing"), (9, "re-chained")]
    # rows the console appends afterwards chain on (from the forged head) and verify: the damage stays named
    fill(console_db, audit_key, 1)
    assert [p.seq for p in audit.verify(console_db, audit_key)] == [3, 6, 9]


def test_a_missing_first_row_and_a_cut_tail(console_db, audit_key):
    fill(console_db, audit_key, 5)
    head = audit.head(console_db)
    assert head[0] == 5 and len(head[1]) == audit.HEAD_SHOWN
    assert audit.verify(console_db, audit_key, head) == []
    raw(console_db, "DELETE FROM audit WHERE seq = 1")
    raw(console_db, "DELETE FROM audit WHERE seq >= 4")
    problems = audit.verify(console_db, audit_key, head)
    assert [(p.seq, p.why.split(":")[0]) for p in problems] == [(1, "missing"), (4, "truncated")]


def test_a_tail_rewritten_from_the_journal_head_on_is_named_against_the_head(console_db, audit_key):
    fill(console_db, audit_key, 4)
    head = audit.head(console_db)
    rechain_without_key(console_db, 4)  # the last row alone: no later row tells "changed" from "re-chained"
    problems = audit.verify(console_db, audit_key, head)
    assert [p.seq for p in problems] == [4, 4] and "journal" in problems[1].why


def test_another_key_finds_every_row_wrong(console_db, audit_key, tmp_path):
    fill(console_db, audit_key, 3)
    other = AuditKey.generate(tmp_path / "other.key")
    assert [p.seq for p in audit.verify(console_db, other)] == [1]  # one line: all of it re-chained


def test_the_head_goes_to_the_journal_only_once_committed(console_db, audit_key, caplog):
    caplog.set_level(logging.INFO, logger="traceon.audit")
    with pytest.raises(RuntimeError), console_db.transaction() as tx:
        audit.record(tx, audit_key, "ann", "login", "a", {})
        raise RuntimeError("the action failed")
    assert "audit head" not in caplog.text and audit.entries(console_db) == []
    with console_db.transaction() as tx:
        audit.record(tx, audit_key, "ann", "login", "a", {})
    assert f"audit head seq=1 mac={audit.head(console_db)[1]}" in caplog.text


def test_sqlite_refuses_a_careless_update(tmp_path, audit_key):
    db = ConsoleDb.open(str(tmp_path / "s.sqlite"), audit_key=audit_key)
    fill(db, audit_key, 1)
    with pytest.raises(Exception, match="append-only"), db.transaction() as tx:
        tx.execute("UPDATE audit SET address = 'x'")
    db.close()


def test_key_files(tmp_path):
    path = tmp_path / "k"
    AuditKey.generate(path)
    assert os.stat(path).st_mode & 0o777 == 0o600 and path.stat().st_size == 32
    before = path.read_bytes()
    with pytest.raises(AuditError, match="never overwritten"):
        AuditKey.generate(path)
    assert path.read_bytes() == before
    os.chmod(path, 0o640)
    with pytest.raises(AuditError, match="chmod 600"):
        AuditKey.load(path)
    short = tmp_path / "short"
    short.write_bytes(b"x" * 16)
    short.chmod(0o600)
    with pytest.raises(AuditError, match="16 bytes, not 32"):
        AuditKey.load(short)
    assert repr(AuditKey(b"s" * 32)) == "AuditKey(…)"  # never the secret in a log or a traceback


def test_fingerprints_tell_the_same_query_without_the_codes(audit_key, tmp_path):
    a, b = "0f" * 16, "a1" * 16
    assert audit.fingerprint(audit_key, [a, b]) == audit.fingerprint(audit_key, [b.upper(), a])
    assert audit.fingerprint(audit_key, [a]) != audit.fingerprint(audit_key, [a, b])
    other = AuditKey.generate(tmp_path / "o")
    assert audit.fingerprint(other, [a, b]) != audit.fingerprint(audit_key, [a, b])


def test_a_trace_row_holds_why_and_what_but_never_a_facehash(console_db, audit_key):
    code = "5a" * 16
    detail = audit.trace_detail(
        audit_key,
        case_id="C-2031",
        reason="positive test reported by the clinic",
        codes=[code],
        since_ms=1,
        until_ms=2,
        stride_ms=900_000,
        rows_searched=1234,
        hits=3,
        sites=frozenset({"north", "east"}),
    )
    with console_db.transaction() as tx:
        audit.record(tx, audit_key, "ann", "trace", "10.0.0.1", detail)
    stored = audit.entries(console_db)[0].detail
    assert stored["case_id"] == "C-2031" and stored["rows_searched"] == 1234 and stored["sites"] == ["east", "north"]
    assert stored["query"] == audit.fingerprint(audit_key, [code])
    with console_db.transaction() as tx:
        dumped = repr(tx.query("SELECT * FROM audit"))
    assert code not in dumped.lower()


@pytest.mark.parametrize(
    ("case_id", "reason", "message"),
    [
        ("", "why", "the case id is required"),
        ("C1", "   ", "the reason is required"),
        ("C" * 201, "why", "at most 200"),
        ("C1\nforged line", "why", "control character"),
        ("C1", "esc \x1b[2J", "control character"),
    ],
)
def test_a_trace_needs_a_case_id_and_a_reason_on_one_bounded_line(audit_key, case_id, reason, message):
    with pytest.raises(AuditError, match=message):
        audit.trace_detail(
            audit_key, case_id=case_id, reason=reason, codes=[], since_ms=0, until_ms=1, stride_ms=1,
            rows_searched=0, hits=0, sites=None,
        )  # fmt: skip


def test_unknown_actions_are_refused(console_db, audit_key):
    with pytest.raises(AuditError, match="unknown audit action"), console_db.transaction() as tx:
        audit.record(tx, audit_key, "ann", "coffee", "a", {})


def cli(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_audit_verify_names_all_three_for_an_auditor(console_url, key_file, audit_key):
    """Must show 4: change one row, delete another, rewrite a third with the chain recomputed without the key."""
    db = ConsoleDb.open(console_url, audit_key=audit_key)
    fill(db, audit_key, 10)
    clean = cli("audit", "verify", "--db", console_url, "--audit-key", str(key_file))
    assert clean.returncode == 0, clean.stderr
    assert "the audit log verifies: 10 rows" in clean.stdout
    raw(db, "UPDATE audit SET \"user\" = 'someone-else' WHERE seq = 2")
    raw(db, "DELETE FROM audit WHERE seq = 5")
    rechain_without_key(db, 8)
    db.close()
    run = cli("audit", "verify", "--db", console_url, "--audit-key", str(key_file))
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert len(lines) == 3, run.stdout
    assert lines[0] == "seq 2: changed: its content no longer matches its MAC"
    assert lines[1].startswith("seq 5: missing: seq 5 deleted")
    assert lines[2].startswith("seq 8: re-chained: this row and the 2 after it")
    assert "Traceback" not in run.stderr and "3 problem(s)" in run.stderr
