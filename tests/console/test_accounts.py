"""Accounts: argon2id passwords, roles and sites, logins throttled per account and per address, all audited."""

# ruff: noqa: F811  (the fixtures are imported from tests/support, then named as test arguments)

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from support.console_db import PASSWORD, audit_key, console_db, console_url, key_file  # noqa: F401  (fixtures)

from edge.console import accounts, audit, throttle
from edge.console.db import ConsoleDb
from edge.core.errors import AccountError

T0 = 1_800_000_000_000


def add(db, name="ann", role="tracer", sites=None):
    with db.transaction() as tx:
        return accounts.add_user(tx, name, PASSWORD, role, sites, "server:root", "local")


def actions(db) -> list[str]:
    return [e.action for e in reversed(audit.entries(db))]


def test_a_user_is_added_listed_and_audited_without_the_password(console_db):
    added = add(console_db, sites=frozenset({"north"}))
    assert accounts.users(console_db) == [added] and accounts.user(console_db, "ann") == added
    assert accounts.user(console_db, "bob") is None
    assert added.sees("north") and not added.sees("south") and added.may("trace") and not added.may("users")
    [row] = audit.entries(console_db)
    assert (row.user, row.action) == ("server:root", "user-added")
    assert row.detail == {"name": "ann", "role": "tracer", "sites": ["north"]}
    with console_db.transaction() as tx:
        stored = tx.query("SELECT password_hash FROM console_users")[0][0]
        everything = repr(tx.query("SELECT * FROM audit"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored and PASSWORD not in everything


@pytest.mark.parametrize(
    ("name", "password", "role", "sites", "message"),
    [
        ("ann", "short", "tracer", None, "at least 12 characters"),
        ("ann", PASSWORD, "root", None, "not a role"),
        ("ann smith", PASSWORD, "tracer", None, "not a user name"),
        ("'; DROP TABLE audit; --", PASSWORD, "tracer", None, "not a user name"),
        ("ann", PASSWORD, "tracer", frozenset(), "at least one site"),
        ("ann", PASSWORD, "tracer", frozenset({"a/b"}), "not a site name"),
        ("ann", "x" * 2000, "tracer", None, "at most 1024"),
    ],
)
def test_what_cannot_be_used_is_refused_with_a_reason(console_db, name, password, role, sites, message):
    with pytest.raises(AccountError, match=message), console_db.transaction() as tx:
        accounts.add_user(tx, name, password, role, sites, "server:root", "local")
    assert accounts.users(console_db) == [] and audit.entries(console_db) == []


def test_a_name_is_taken_once(console_db):
    add(console_db)
    with pytest.raises(AccountError, match="already a user ann"):
        add(console_db, role="admin")
    assert [u.role for u in accounts.users(console_db)] == ["tracer"]


def test_roles_and_sites():
    admin = accounts.User("a", "admin", None, False)
    viewer = accounts.User("v", "viewer", frozenset({"s1"}), False)
    auditor = accounts.User("u", "auditor", None, False)
    assert admin.may("users") and admin.may("checkpoints") and not admin.may("trace")
    assert viewer.may("checkpoints") and not viewer.may("trace") and not viewer.may("audit")
    assert auditor.may("audit") and not auditor.may("checkpoints") and not auditor.may("no such permission")
    assert viewer.sees("s1") and not viewer.sees("s2")
    assert not accounts.User("t", "tracer", None, True).may("trace")


def test_login_right_wrong_unknown_and_disabled_are_each_audited(console_db):
    add(console_db)
    ok = accounts.login(console_db, "ann", PASSWORD, "10.0.0.1", now_ms=T0)
    assert ok.user.name == "ann" and ok.why == "" and ok.retry_after_s == 0
    wrong = accounts.login(console_db, "ann", PASSWORD + "!", "10.0.0.1", now_ms=T0)
    nobody = accounts.login(console_db, "bob", PASSWORD, "10.0.0.1", now_ms=T0)
    assert wrong.user is None and nobody.user is None and wrong.why == nobody.why == "wrong name or password"
    with console_db.transaction() as tx:
        accounts.disable(tx, "ann", "server:root", "local")
    off = accounts.login(console_db, "ann", PASSWORD, "10.0.0.2", now_ms=T0)
    assert off.user is None and "disabled" in off.why
    with console_db.transaction() as tx:
        accounts.enable(tx, "ann", "server:root", "local")
    assert accounts.login(console_db, "ann", PASSWORD, "10.0.0.2", now_ms=T0).user is not None
    assert actions(console_db) == [
        "user-added", "login", "login-failed", "login-failed", "user-changed", "login-failed", "user-changed", "login",
    ]  # fmt: skip
    assert audit.verify(console_db, console_db.audit_key) == []


def test_ten_wrong_passwords_lock_the_account_and_the_address_for_a_bounded_time(console_db):
    add(console_db)
    tries = [accounts.login(console_db, "ann", "wrong password!", "198.51.100.7", now_ms=T0) for _ in range(10)]
    assert all(t.user is None for t in tries)
    assert [t.retry_after_s for t in tries[:5]] == [0] * 5 and tries[5].retry_after_s > 0  # the 6th meets the lock
    refused = accounts.login(console_db, "ann", PASSWORD, "198.51.100.7", now_ms=T0 + 1000)
    assert refused.user is None and 0 < refused.retry_after_s <= 15 * 60 and "try again in" in refused.why
    locks = [e for e in audit.entries(console_db, action="login-locked")]
    assert {e.detail["scope"] for e in locks} == {"account", "address"}
    assert all(e.detail["locked_s"] <= 15 * 60 for e in locks)
    # the lock ends on its own: the real user is back in after it
    later = T0 + 1000 + refused.retry_after_s * 1000
    assert accounts.login(console_db, "ann", PASSWORD, "198.51.100.8", now_ms=later).user is not None


def test_locks_grow_but_never_past_fifteen_minutes(console_db):
    now, waits = T0, []
    for _ in range(30):  # an attacker who comes back the moment each lock ends
        login = accounts.login(console_db, "ann", "wrong password!", "203.0.113.5", now_ms=now)
        if login.retry_after_s:
            waits.append(login.retry_after_s)
            now += login.retry_after_s * 1000
    assert waits == sorted(waits) and waits[0] == throttle.FIRST_LOCK_MS // 1000 and max(waits) == 15 * 60


def test_an_address_is_limited_across_accounts_and_an_account_across_addresses(console_db):
    add(console_db)
    for i in range(5):  # one address guessing five names
        accounts.login(console_db, f"user{i}", "wrong password!", "203.0.113.1", now_ms=T0)
    assert accounts.login(console_db, "ann", PASSWORD, "203.0.113.1", now_ms=T0).retry_after_s > 0
    assert accounts.login(console_db, "ann", PASSWORD, "203.0.113.2", now_ms=T0).user is not None
    for i in range(5):  # five addresses guessing one name
        accounts.login(console_db, "ann", "wrong password!", f"198.51.100.{i}", now_ms=T0)
    assert accounts.login(console_db, "ann", PASSWORD, "198.51.100.99", now_ms=T0).retry_after_s > 0


def test_a_known_address_gets_in_while_an_attacker_keeps_the_account_locked_elsewhere(console_db):
    add(console_db)
    assert accounts.login(console_db, "ann", PASSWORD, "10.1.1.1", now_ms=T0).user is not None  # her usual address
    for _ in range(12):
        accounts.login(console_db, "ann", "wrong password!", "203.0.113.66", now_ms=T0 + 1)
    assert accounts.login(console_db, "ann", PASSWORD, "203.0.113.67", now_ms=T0 + 2).retry_after_s > 0
    assert accounts.login(console_db, "ann", PASSWORD, "10.1.1.1", now_ms=T0 + 2).user is not None


def test_locks_survive_a_restart(console_url, audit_key):
    db = ConsoleDb.open(console_url, audit_key=audit_key)
    add(db)
    for _ in range(6):
        accounts.login(db, "ann", "wrong password!", "203.0.113.9", now_ms=T0)
    db.close()
    again = ConsoleDb.open(console_url, audit_key=audit_key)
    assert accounts.login(again, "ann", PASSWORD, "203.0.113.9", now_ms=T0 + 1).retry_after_s > 0
    again.close()


def test_a_hash_made_with_weaker_parameters_is_replaced_at_login(console_db):
    add(console_db)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with console_db.transaction() as tx:
        tx.execute("UPDATE console_users SET password_hash = ? WHERE name = 'ann'", (weak,))
    assert accounts.login(console_db, "ann", PASSWORD, "10.0.0.1", now_ms=T0).user is not None
    with console_db.transaction() as tx:
        stored = tx.query("SELECT password_hash FROM console_users")[0][0]
    assert stored != weak and not accounts.HASHER.check_needs_rehash(stored)
    assert accounts.login(console_db, "ann", PASSWORD, "10.0.0.1", now_ms=T0).user is not None


def test_a_change_without_an_audit_key_is_refused(tmp_path):
    db = ConsoleDb.open(str(tmp_path / "s.sqlite"))
    with pytest.raises(Exception, match="no audit key"), db.transaction() as tx:
        accounts.add_user(tx, "ann", PASSWORD, "admin", None, "server:root", "local")
    assert accounts.users(db) == []
    db.close()
