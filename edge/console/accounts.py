"""The console's people: a name, a role, the sites they see, an argon2id password hash, enabled or not.

Every change writes its audit row in the caller's transaction, so a user is never added, changed or
disabled without the log saying who did it. Passwords are never logged, printed or audited.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edge.console import audit, throttle
from edge.console.audit import AuditKey
from edge.console.db import ConsoleDb, Tx
from edge.core.errors import AccountError
from edge.core.topics import UNIT_NAME

ROLES = ("admin", "tracer", "auditor", "viewer")
PERMISSIONS = {
    "users": {"admin"},
    "checkpoints": {"admin", "tracer", "viewer"},
    "trace": {"tracer"},
    "export": {"tracer"},
    "notices": {"tracer"},
    "audit": {"auditor"},
}
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" would only cost the server time
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", re.ASCII)
HASHER = PasswordHasher()  # argon2id with RFC 9106's low-memory profile (t=3, m=64 MiB, p=4)
_DUMMY = HASHER.hash("an unknown user costs as much as a known one")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    sites: frozenset[str] | None  # None: every site
    disabled: bool

    def may(self, permission: str) -> bool:
        return not self.disabled and self.role in PERMISSIONS.get(permission, ())

    def sees(self, site: str) -> bool:
        return not self.disabled and (self.sites is None or site in self.sites)


@dataclass(frozen=True)
class Login:
    user: User | None  # None: refused
    why: str  # for the person at the login form; "" on success
    retry_after_s: int  # > 0: locked for that long, even with the right password


def checked_name(name) -> str:
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise AccountError(
            f"{_shown(name)} is not a user name: use 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def checked_role(role) -> str:
    if role not in ROLES:
        raise AccountError(f"{_shown(role)} is not a role: use one of {', '.join(ROLES)}")
    return role


def checked_sites(sites) -> frozenset[str] | None:
    if sites is None:
        return None
    sites = frozenset(sites)
    if not sites:
        raise AccountError("a user needs at least one site, or every site (all)")
    for site in sites:
        if not isinstance(site, str) or not UNIT_NAME.fullmatch(site):
            raise AccountError(f"{_shown(site)} is not a site name: sites are named as units name them")
    return sites


def checked_password(password) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters (a passphrase of a few words is best)")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password may have at most {MAX_PASSWORD} characters")
    return password


def _shown(value) -> str:
    return repr(value) if not isinstance(value, str) or len(value) <= 40 else f"{value[:36]!r}…"


def _now() -> int:
    return int(time.time() * 1000)


def add_user(
    tx: Tx,
    name: str,
    password: str,
    role: str,
    sites: frozenset[str] | None,
    by: str,
    address: str,
    key: AuditKey | None = None,
) -> User:
    name, role, sites = checked_name(name), checked_role(role), checked_sites(sites)
    hashed = HASHER.hash(checked_password(password))
    if tx.query("SELECT 1 FROM console_users WHERE name = ?", (name,)):
        raise AccountError(f"there is already a user {name}")
    now = _now()
    tx.execute(
        "INSERT INTO console_users (name, role, sites, password_hash, disabled, created_ms, changed_ms) "
        "VALUES (?, ?, ?, ?, 0, ?, ?)",
        (name, role, _sites_text(sites), hashed, now, now),
    )
    _audit(tx, key, by, "user-added", address, {"name": name, "role": role, "sites": _sites_shown(sites)})
    return User(name, role, sites, False)


def set_password(tx: Tx, name: str, password: str, by: str, address: str, key: AuditKey | None = None) -> None:
    """A new password; every session of the user ends (whoever held one must log in with it)."""
    hashed = HASHER.hash(checked_password(password))
    _existing(tx, name)
    tx.execute("UPDATE console_users SET password_hash = ?, changed_ms = ? WHERE name = ?", (hashed, _now(), name))
    _log_out_everywhere(tx, name)
    _audit(tx, key, by, "user-changed", address, {"name": name, "change": "password"})


def disable(tx: Tx, name: str, by: str, address: str, key: AuditKey | None = None) -> None:
    """The user can no longer log in, and is logged out now."""
    _existing(tx, name)
    tx.execute("UPDATE console_users SET disabled = 1, changed_ms = ? WHERE name = ?", (_now(), name))
    _log_out_everywhere(tx, name)
    _audit(tx, key, by, "user-changed", address, {"name": name, "change": "disabled"})


def enable(tx: Tx, name: str, by: str, address: str, key: AuditKey | None = None) -> None:
    _existing(tx, name)
    tx.execute("UPDATE console_users SET disabled = 0, changed_ms = ? WHERE name = ?", (_now(), name))
    _audit(tx, key, by, "user-changed", address, {"name": name, "change": "enabled"})


def set_role(
    tx: Tx, name: str, role: str, sites: frozenset[str] | None, by: str, address: str, key: AuditKey | None = None
) -> None:
    """A new role and site list; the user's sessions end, so the new rights hold from the next login."""
    role, sites = checked_role(role), checked_sites(sites)
    _existing(tx, name)
    tx.execute(
        "UPDATE console_users SET role = ?, sites = ?, changed_ms = ? WHERE name = ?",
        (role, _sites_text(sites), _now(), name),
    )
    _log_out_everywhere(tx, name)
    _audit(tx, key, by, "user-changed", address, {"name": name, "role": role, "sites": _sites_shown(sites)})


def users(db: ConsoleDb) -> list[User]:
    with db.transaction() as tx:
        rows = tx.query("SELECT name, role, sites, disabled FROM console_users ORDER BY name")
    return [_user(row) for row in rows]


def user(db: ConsoleDb, name: str) -> User | None:
    with db.transaction() as tx:
        return user_in(tx, name)


def user_in(tx: Tx, name: str) -> User | None:
    rows = tx.query("SELECT name, role, sites, disabled FROM console_users WHERE name = ?", (name,))
    return _user(rows[0]) if rows else None


def login(
    db: ConsoleDb, name: str, password: str, address: str, now_ms: int | None = None, key: AuditKey | None = None
) -> Login:
    """Check a name and password, within the limits of throttle; every outcome is audited. A locked
    account or address is refused even with the right password (and told how long to wait)."""
    now = _now() if now_ms is None else now_ms
    name = name if isinstance(name, str) else ""
    shown_name = name if USER_NAME.fullmatch(name) else "(not a user name)"  # nothing odd into the log
    password = password if isinstance(password, str) else ""
    with db.transaction() as tx:
        wait_s = throttle.wait_s(tx, shown_name, address, now)
        if wait_s:
            _audit(tx, key, shown_name, "login-failed", address, {"why": "locked", "retry_after_s": wait_s}, now)
            return Login(None, f"too many failed logins: try again in {_wait_shown(wait_s)}", wait_s)
        rows = tx.query("SELECT name, role, sites, disabled, password_hash FROM console_users WHERE name = ?", (name,))
        stored = rows[0][4] if rows else _DUMMY  # the same work for a name that is not there: no user probing
        right = _matches(stored, password[:MAX_PASSWORD]) and bool(rows)
        if not right:
            for lock in throttle.failed(tx, shown_name, address, now):
                _audit(tx, key, shown_name, "login-locked", address, lock, now)
            _audit(tx, key, shown_name, "login-failed", address, {"why": "wrong name or password"}, now)
            return Login(None, "wrong name or password", 0)
        found = _user(rows[0][:4])
        if found.disabled:
            _audit(tx, key, name, "login-failed", address, {"why": "disabled"}, now)
            return Login(None, "this account is disabled: ask an administrator", 0)
        if HASHER.check_needs_rehash(stored):  # the hasher's parameters were raised since this hash was made
            tx.execute("UPDATE console_users SET password_hash = ? WHERE name = ?", (HASHER.hash(password), name))
        throttle.succeeded(tx, name, address, now)
        _audit(tx, key, name, "login", address, {}, now)
        return Login(found, "", 0)


def _matches(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _wait_shown(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{(seconds + 59) // 60} min"


def _existing(tx: Tx, name: str) -> None:
    if not tx.query("SELECT 1 FROM console_users WHERE name = ?", (name,)):
        raise AccountError(f"there is no user {_shown(name)}")


def _user(row: tuple) -> User:
    name, role, sites, disabled = row
    return User(name, role, None if sites is None else frozenset(json.loads(sites)), bool(disabled))


def _sites_text(sites: frozenset[str] | None) -> str | None:
    return None if sites is None else json.dumps(sorted(sites))


def _sites_shown(sites: frozenset[str] | None) -> str | list[str]:
    return "all" if sites is None else sorted(sites)


def _log_out_everywhere(tx: Tx, name: str) -> None:
    # sessions.close_sessions_of does the same; not imported, since sessions reads users through this module
    tx.execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))


def _audit(tx: Tx, key: AuditKey | None, by: str, action: str, address: str, detail: dict, now_ms=None) -> None:
    """The row that records a change, in the change's own transaction, under the key passed or the database's."""
    audit.record(tx, audit.key_of(tx, key), by, action, address, detail, now_ms)
