"""How fast wrong passwords may be tried: per account and per address, with locks that end on their own.

After THRESHOLD failures (forgotten after FORGET_MS without one), each further failure locks the account
and the address for a delay that doubles from FIRST_LOCK_MS up to at most LONGEST_LOCK_MS. During a lock
every attempt is refused, the right password too. The state is in the database, so a restart unlocks nothing.

So that an attacker cannot keep a real user out, an account's lock does not hold at an address the user
has logged in from before (a "known" address, remembered for KNOWN_MS); the address's own lock still does.
"""

from __future__ import annotations

from edge.console.db import Tx

THRESHOLD = 5
FIRST_LOCK_MS = 30_000
LONGEST_LOCK_MS = 15 * 60_000
FORGET_MS = 60 * 60_000
KNOWN_MS = 90 * 86_400_000


def _account(name: str) -> str:
    return f"account:{name}"


def _address(address: str) -> str:
    return f"address:{address}"


def _known(name: str, address: str) -> str:
    return f"known:{name}@{address}"


def wait_s(tx: Tx, name: str, address: str, now_ms: int) -> int:
    """Seconds until `name` may try again from `address`; 0 if it may now."""
    subjects = [_address(address)]
    if not _is_known(tx, name, address, now_ms):
        subjects.append(_account(name))
    marks = ",".join("?" * len(subjects))
    rows = tx.query(f"SELECT MAX(locked_until_ms) FROM console_throttle WHERE subject IN ({marks})", subjects)
    until = rows[0][0] if rows and rows[0][0] is not None else 0
    return max(0, -(-(until - now_ms) // 1000))  # rounded up: "try again in 0 s" would be a lie


def failed(tx: Tx, name: str, address: str, now_ms: int) -> list[dict]:
    """Count one failure against the account and the address; the locks it started (for the audit log)."""
    locks = []
    for scope, subject, shown in (("account", _account(name), name), ("address", _address(address), address)):
        rows = tx.query("SELECT failures, last_ms FROM console_throttle WHERE subject = ?", (subject,))
        failures = rows[0][0] if rows and now_ms - rows[0][1] <= FORGET_MS else 0
        failures += 1
        until = 0
        if failures >= THRESHOLD:
            delay = min(FIRST_LOCK_MS << min(failures - THRESHOLD, 20), LONGEST_LOCK_MS)
            until = now_ms + delay
            locks.append({"scope": scope, scope: shown, "failures": failures, "locked_s": delay // 1000})
        _put(tx, subject, failures, now_ms, until)
    return locks


def succeeded(tx: Tx, name: str, address: str, now_ms: int) -> None:
    """A right password: the address becomes known for this account, and the account's count starts over
    unless it is locked (a login from a known address does not lift a lock that holds elsewhere)."""
    tx.execute("DELETE FROM console_throttle WHERE subject = ? AND locked_until_ms <= ?", (_account(name), now_ms))
    _put(tx, _known(name, address), 0, now_ms, 0)


def _is_known(tx: Tx, name: str, address: str, now_ms: int) -> bool:
    rows = tx.query("SELECT last_ms FROM console_throttle WHERE subject = ?", (_known(name, address),))
    return bool(rows) and now_ms - rows[0][0] <= KNOWN_MS


def _put(tx: Tx, subject: str, failures: int, last_ms: int, locked_until_ms: int) -> None:
    tx.execute(
        "INSERT INTO console_throttle (subject, failures, last_ms, locked_until_ms) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, last_ms = excluded.last_ms, "
        "locked_until_ms = excluded.locked_until_ms",
        (subject, failures, last_ms, locked_until_ms),
    )
