"""The audit log: who logged in, traced, exported or published what, when — append-only and chained.

Each row's MAC is HMAC-SHA256 over the previous row's MAC and this row's canonical bytes (its seq included),
under a key kept in a 0600 file that the database never holds. Whoever can write the database can change,
delete or append rows, but cannot make MACs that verify without the key: `verify` names a changed row, a
missing one (a gap in seq) and one rewritten with its chain recomputed. Each new head (seq and a MAC prefix)
is also written to the journal, so that cutting rows off the tail shows against the last head logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from edge.console.db import ConsoleDb, Tx
from edge.core import private_files
from edge.core.errors import AuditError, PrivateFileError

log = logging.getLogger("traceon.audit")

KEY_BYTES = 32
ACTIONS = (
    "login",
    "login-failed",
    "login-locked",
    "logout",
    "trace",
    "export",
    "notice",
    "notice-withdrawn",
    "user-added",
    "user-changed",
)
MAX_TEXT = 200  # a case id or a reason: long enough for a sentence, short enough to read in a list
HEAD_SHOWN = 16  # hex digits of the head's MAC written to the journal: enough to tell a forged head
GENESIS = b""  # what the first row chains from


class AuditKey:
    """The audit key: 32 random bytes in a private file. Two purposes, two subkeys derived from it."""

    def __init__(self, secret: bytes):
        self._chain = hmac.new(secret, b"traceon audit chain", hashlib.sha256).digest()
        self._fingerprint = hmac.new(secret, b"traceon audit fingerprint", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "AuditKey(…)"  # never the secret in a log or a traceback

    @classmethod
    def load(cls, path: Path | str) -> AuditKey:
        try:
            secret = private_files.read(Path(path), "the audit key")
        except PrivateFileError as e:
            raise AuditError(str(e)) from None
        if len(secret) != KEY_BYTES:
            raise AuditError(
                f"the audit key {path} holds {len(secret)} bytes, not {KEY_BYTES}: "
                "make one with `traceon-edge audit keygen FILE`"
            )
        return cls(secret)

    @classmethod
    def generate(cls, path: Path | str) -> AuditKey:
        """A new key written to `path` with mode 0600; an existing file is never replaced."""
        secret = os.urandom(KEY_BYTES)
        never = "an audit key is never overwritten (the log it signs could no longer be verified); choose another "
        never += "file name"
        private_files.create(Path(path), secret, AuditError, "the audit key", never)
        return cls(secret)

    def mac(self, previous: str, row: bytes) -> str:
        return hmac.new(self._chain, previous.encode() + row, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Entry:
    seq: int
    at_ms: int
    user: str
    action: str
    address: str
    detail: dict


@dataclass(frozen=True)
class Problem:
    seq: int
    why: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.why}"


def canonical(seq: int, at_ms: int, user: str, action: str, address: str, detail: str) -> bytes:
    """The bytes a row's MAC covers: every column but the MAC, in one unambiguous encoding."""
    return json.dumps([seq, at_ms, user, action, address, detail], ensure_ascii=True, separators=(",", ":")).encode()


def detail_text(detail: dict) -> str:
    return json.dumps(detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def record(tx: Tx, key: AuditKey, user: str, action: str, address: str, detail: dict, now_ms: int | None = None) -> int:
    """Append one row in `tx` (so it commits with the action it records); its seq."""
    if action not in ACTIONS:
        raise AuditError(f"unknown audit action {action!r}")
    if tx.kind == "postgresql":  # appenders queue here; an advisory lock needs no right beyond INSERT
        tx.execute("SELECT pg_advisory_xact_lock(7431029)")
    last = tx.query("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1")
    seq, previous = (last[0][0] + 1, last[0][1]) if last else (1, GENESIS.decode())
    at_ms = int(time.time() * 1000) if now_ms is None else now_ms
    text = detail_text(detail)
    mac = key.mac(previous, canonical(seq, at_ms, user, action, address, text))
    tx.execute(
        'INSERT INTO audit (seq, at_ms, "user", action, address, detail, mac) VALUES (?, ?, ?, ?, ?, ?, ?)',
        (seq, at_ms, user, action, address, text, mac),
    )
    # the journal's copy of the head, once committed: a tail cut off the table still shows against it
    tx.after_commit(lambda: log.info("audit head seq=%d mac=%s", seq, mac[:HEAD_SHOWN]))
    return seq


def key_of(tx: Tx, key: AuditKey | None = None) -> AuditKey:
    """The key passed, else the one the database was opened with; an unaudited change is refused."""
    key = key or tx.audit_key
    if key is None:
        raise AuditError("no audit key: open the database with ConsoleDb.open(url, audit_key=…), or pass key=")
    return key


def checked_text(value, what: str, required: bool = True) -> str:
    """A case id or a reason as the audit log keeps it: bounded, printable, one line."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise AuditError(f"{what} is required")
        return ""
    if len(text) > MAX_TEXT:
        raise AuditError(f"{what} is {len(text)} characters long; at most {MAX_TEXT} are kept")
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise AuditError(f"{what} holds a control character (a line break, a tab, an escape): write it on one line")
    return text


def trace_detail(
    key: AuditKey,
    *,
    case_id: str,
    reason: str,
    codes: list[str],
    since_ms: int,
    until_ms: int,
    stride_ms: int,
    rows_searched: int,
    hits: int,
    sites: frozenset[str] | None,
) -> dict:
    """A trace's audit detail: what was searched, why and with what result — never a FaceHash."""
    return {
        "case_id": checked_text(case_id, "the case id"),
        "reason": checked_text(reason, "the reason"),
        "since_ms": since_ms,
        "until_ms": until_ms,
        "stride_ms": stride_ms,
        "query": fingerprint(key, codes),
        "codes": len(codes),
        "rows_searched": rows_searched,
        "hits": hits,
        "sites": "all" if sites is None else sorted(sites),
    }


def fingerprint(key: AuditKey, codes: list[str]) -> str:
    """The same set of FaceHashes gives the same fingerprint, in any order; without the key it says nothing."""
    joined = "\n".join(sorted({c.strip().lower() for c in codes})).encode()
    return hmac.new(key._fingerprint, joined, hashlib.sha256).hexdigest()[:32]


def entries(
    db: ConsoleDb,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    user: str | None = None,
    action: str | None = None,
    limit: int = 500,
) -> list[Entry]:
    """The newest rows first, filtered."""
    where, params = [], []
    filters = (("at_ms >= ?", since_ms), ("at_ms < ?", until_ms), ('"user" = ?', user), ("action = ?", action))
    for clause, value in filters:
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = 'SELECT seq, at_ms, "user", action, address, detail FROM audit'
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC LIMIT ?"
    with db.transaction() as tx:
        rows = tx.query(sql, [*params, int(limit)])
    return [Entry(s, at, u, a, addr, _parsed(d)) for s, at, u, a, addr, d in rows]


def _parsed(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {"unreadable": text[:MAX_TEXT]}
    return value if isinstance(value, dict) else {"unreadable": text[:MAX_TEXT]}


def head(db: ConsoleDb) -> tuple[int, str] | None:
    """The newest row's seq and MAC prefix, as the journal records it."""
    with db.transaction() as tx:
        rows = tx.query("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1")
    return (rows[0][0], rows[0][1][:HEAD_SHOWN]) if rows else None


def verify(db: ConsoleDb, key: AuditKey, known_head: tuple[int, str] | None = None) -> list[Problem]:
    """Every problem in the chain, one per changed, missing or re-chained row (in seq order). With
    `known_head` (seq, MAC prefix as the journal logged it), rows cut off the tail are named too."""
    with db.transaction() as tx:
        rows = tx.query('SELECT seq, at_ms, "user", action, address, detail, mac FROM audit ORDER BY seq')
    problems: list[Problem] = []
    expected, previous_ok = 1, True
    links = [_link_ok(key, rows[i - 1][6] if i else None, row) for i, row in enumerate(rows)]
    i = 0
    while i < len(rows):
        seq = rows[i][0]
        if seq > expected:
            span = f"seq {expected}" if seq == expected + 1 else f"seq {expected} to {seq - 1}"
            jump = f"the chain jumps from {expected - 1} to {seq}"
            problems.append(Problem(expected, f"missing: {span} deleted ({jump})"))
            previous_ok = False  # the next row chains from a MAC that is gone: its link cannot be checked
        if previous_ok and not links[i]:
            run = 1
            while i + run < len(rows) and rows[i + run][0] == seq + run and not links[i + run]:
                run += 1
            if run == 1:
                problems.append(Problem(seq, "changed: its content no longer matches its MAC"))
            else:
                problems.append(
                    Problem(
                        seq,
                        f"re-chained: this row and the {run - 1} after it carry MACs the audit key did not make "
                        "(rewritten, and the chain recomputed without the key)",
                    )
                )
            i += run
            expected = seq + run
            previous_ok = True
            continue
        previous_ok, expected = True, seq + 1
        i += 1
    if known_head is not None:
        problems += _against_head(rows, known_head)
    return problems


def _link_ok(key: AuditKey, previous_mac: str | None, row: tuple) -> bool:
    seq, at_ms, user, action, address, detail, mac = row
    previous = GENESIS.decode() if previous_mac is None and seq == 1 else (previous_mac or "")
    expected = key.mac(previous, canonical(seq, at_ms, user, action, address, detail))
    return hmac.compare_digest(expected, mac)


def _against_head(rows: list[tuple], known_head: tuple[int, str]) -> list[Problem]:
    seq, prefix = known_head
    by_seq = {row[0]: row[6] for row in rows}
    last = rows[-1][0] if rows else 0
    if seq > last:
        why = f"truncated: the log ends at seq {last}, but the journal recorded a head at seq {seq}"
        return [Problem(last + 1, why)]
    if seq in by_seq and not by_seq[seq].startswith(prefix.lower()):
        return [Problem(seq, "re-chained: its MAC differs from the head the journal recorded for it")]
    return []
