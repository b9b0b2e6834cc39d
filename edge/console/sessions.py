"""Server-side sessions: a random token in the browser's cookie, only its SHA-256 in the database.

A session ends after IDLE_MS without a request, ABSOLUTE_MS after login whatever happens, on logout, and
when its user is disabled or changes password. Someone who reads the table cannot use what they read.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from edge.console.accounts import User, user_in
from edge.console.db import ConsoleDb, Tx

IDLE_MS = 30 * 60_000
ABSOLUTE_MS = 12 * 3_600_000
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    address: str
    created_ms: int
    seen_ms: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> int:
    return int(time.time() * 1000)


def open_session(tx: Tx, user_name: str, address: str, now_ms: int | None = None) -> tuple[str, str]:
    """A new session for `user_name`: (token for the cookie, CSRF token for the forms)."""
    now = _now() if now_ms is None else now_ms
    token, csrf = secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES)
    tx.execute(
        "INSERT INTO console_sessions (token_hash, user_name, csrf, address, created_ms, seen_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (_hash(token), user_name, csrf, address, now, now),
    )
    tx.execute("DELETE FROM console_sessions WHERE seen_ms < ? OR created_ms < ?", (now - IDLE_MS, now - ABSOLUTE_MS))
    return token, csrf


def session(db: ConsoleDb, token: str, now_ms: int | None = None) -> Session | None:
    """The live session of `token`, its idle time reset; None if there is none, it expired, or its user
    is disabled or gone."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    now = _now() if now_ms is None else now_ms
    with db.transaction() as tx:
        rows = tx.query(
            "SELECT user_name, csrf, address, created_ms, seen_ms FROM console_sessions WHERE token_hash = ?",
            (_hash(token),),
        )
        if not rows:
            return None
        name, csrf, address, created_ms, seen_ms = rows[0]
        found = user_in(tx, name)
        if now - seen_ms > IDLE_MS or now - created_ms > ABSOLUTE_MS or found is None or found.disabled:
            tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (_hash(token),))
            return None
        tx.execute("UPDATE console_sessions SET seen_ms = ? WHERE token_hash = ?", (max(now, seen_ms), _hash(token)))
        return Session(found, csrf, address, created_ms, now)


def close_session(tx: Tx, token: str) -> None:
    if isinstance(token, str):
        tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (_hash(token),))


def close_sessions_of(tx: Tx, user_name: str) -> int:
    """End every session of a user (disabled, new password, new role); how many there were."""
    return tx.execute("DELETE FROM console_sessions WHERE user_name = ?", (user_name,))
