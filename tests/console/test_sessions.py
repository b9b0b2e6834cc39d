"""Sessions: only a hash of the token is stored; idle 30 min, absolute 12 h, ended by logout, disable, new password."""

# ruff: noqa: F811  (the fixtures are imported from tests/support, then named as test arguments)

from __future__ import annotations

import pytest
from support.console_db import PASSWORD, audit_key, console_db, console_url, key_file  # noqa: F401  (fixtures)

from edge.console import accounts, sessions

T0 = 1_800_000_000_000
MIN = 60_000


@pytest.fixture
def ann(console_db):
    with console_db.transaction() as tx:
        accounts.add_user(tx, "ann", PASSWORD, "tracer", frozenset({"north"}), "server:root", "local")
    return console_db


def start(db, now=T0):
    with db.transaction() as tx:
        return sessions.open_session(tx, "ann", "10.0.0.1", now_ms=now)


def test_a_session_holds_its_user_and_csrf_and_the_table_only_a_hash(ann):
    token, csrf = start(ann)
    found = sessions.session(ann, token, now_ms=T0 + MIN)
    assert found.user.name == "ann" and found.user.sites == frozenset({"north"}) and found.csrf == csrf
    assert len(token) >= 43 and token != csrf  # 32 random bytes, URL-safe
    with ann.transaction() as tx:
        stored = repr(tx.query("SELECT * FROM console_sessions"))
    assert token not in stored
    for forged in ("", "x" * 43, token[:-1], token + "A", "x" * 10_000, None):
        assert sessions.session(ann, forged, now_ms=T0) is None


def test_idle_for_thirty_minutes_ends_it_and_use_keeps_it(ann):
    kept, _ = start(ann)
    idle, _ = start(ann)
    for minutes in (20, 40, 60):
        assert sessions.session(ann, kept, now_ms=T0 + minutes * MIN) is not None
    assert sessions.session(ann, idle, now_ms=T0 + 31 * MIN) is None
    assert sessions.session(ann, idle, now_ms=T0) is None  # gone, not only hidden


def test_twelve_hours_end_it_however_busy(ann):
    token, _ = start(ann)
    now = T0
    while now < T0 + 12 * 60 * MIN - 20 * MIN:
        now += 20 * MIN
        assert sessions.session(ann, token, now_ms=now) is not None
    assert sessions.session(ann, token, now_ms=T0 + 12 * 60 * MIN + MIN) is None


def test_logout_disable_and_a_new_password_end_sessions(ann):
    out, _ = start(ann)
    other, _ = start(ann)
    with ann.transaction() as tx:
        sessions.close_session(tx, out)
    assert sessions.session(ann, out, now_ms=T0) is None and sessions.session(ann, other, now_ms=T0) is not None
    with ann.transaction() as tx:
        accounts.set_password(tx, "ann", PASSWORD + " two", "server:root", "local")
    assert sessions.session(ann, other, now_ms=T0) is None
    third, _ = start(ann)
    with ann.transaction() as tx:
        accounts.disable(tx, "ann", "server:root", "local")
    assert sessions.session(ann, third, now_ms=T0) is None
    with ann.transaction() as tx:
        accounts.enable(tx, "ann", "server:root", "local")
    assert sessions.session(ann, third, now_ms=T0) is None  # enabling again does not bring an old session back
    assert accounts.login(ann, "ann", PASSWORD + " two", "10.0.0.1", now_ms=T0).user is not None


def test_a_session_of_a_disabled_user_is_refused_even_if_it_was_left_in_the_table(ann):
    token, _ = start(ann)
    with ann.transaction() as tx:  # as if the sessions were not closed (a crash, an older version)
        tx.execute("UPDATE console_users SET disabled = 1")
    assert sessions.session(ann, token, now_ms=T0) is None
