"""Signing in and out, the users page and the audit page, through the real app and its database (TestClient)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from support.console import PASSWORD, console_setup, form_token, sign_in

from edge.console import audit
from edge.console.app import build_app
from edge.console.views.web import SESSION_COOKIE
from edge.tracer import store


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "sightings.db"
    store.open_store(str(path)).close()
    return console_setup(tmp_path, str(path))


@pytest.fixture
def client(setup):
    with TestClient(build_app(setup.settings), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


def entries(setup, **filters):
    db = setup.db()
    try:
        return audit.entries(db, **filters)
    finally:
        db.close()


def test_signing_in_sets_a_strict_http_only_session_cookie_and_goes_to_the_roles_page(client, setup):
    answer = sign_in(client, "tess")
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.get("/", follow_redirects=False).headers["location"] == "/trace"
    assert [e.user for e in entries(setup, action="login")] == ["tess"]


@pytest.mark.parametrize("name, start", [("ada", "/users"), ("otto", "/audit"), ("vera", "/checkpoints")])
def test_each_role_starts_on_its_own_page(client, name, start):
    sign_in(client, name)
    assert client.get("/", follow_redirects=False).headers["location"] == start


def test_a_wrong_password_is_refused_audited_and_sets_no_session(client, setup):
    answer = sign_in(client, "tess", "not the password at all")
    assert answer.status_code == 401
    assert "wrong name or password" in answer.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/trace", follow_redirects=False).headers["location"] == "/login"
    assert [e.detail["why"] for e in entries(setup, action="login-failed")] == ["wrong name or password"]


def test_ten_wrong_passwords_lock_the_account_for_a_while_even_with_the_right_one(client, setup):
    for _ in range(10):
        sign_in(client, "tess", "guessing wrong again")
    answer = sign_in(client, "tess")
    assert answer.status_code == 429
    assert 0 < int(answer.headers["retry-after"]) <= 3600
    assert "try again in" in answer.text
    assert entries(setup, action="login-locked")


def test_signing_out_ends_the_session_and_needs_its_token(client, setup):
    sign_in(client, "vera")
    page = client.get("/notices").text
    refused = client.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/", follow_redirects=False).headers["location"] == "/checkpoints"  # still signed in
    token = client.cookies[SESSION_COOKIE]
    answer = client.post("/logout", data={"csrf": form_token(page)}, follow_redirects=False)
    assert answer.status_code == 303
    client.cookies.set(SESSION_COOKIE, token)  # the old cookie, replayed
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert [e.user for e in entries(setup, action="logout")] == ["vera"]


def test_a_forged_session_cookie_is_no_session(client):
    client.cookies.set(SESSION_COOKIE, "A" * 43)
    assert client.get("/audit", follow_redirects=False).headers["location"] == "/login"
    client.cookies.set(SESSION_COOKIE, "' OR 1=1 --")
    assert client.get("/audit", follow_redirects=False).headers["location"] == "/login"


def test_an_admin_adds_disables_and_enables_an_account(client, setup):
    sign_in(client, "ada")
    token = form_token(client.get("/users").text)
    added = client.post(
        "/users",
        data={"csrf": token, "name": "newbie", "password": PASSWORD, "role": "viewer", "sites": "north, south"},
    )
    assert added.status_code == 200 and "Account added." in added.text
    assert "newbie" in added.text and "north, south" in added.text
    disabled = client.post("/users/newbie/disable", data={"csrf": token})
    assert "disabled" in disabled.text
    other = TestClient(client.app, base_url="http://127.0.0.1")
    assert sign_in(other, "newbie").status_code == 401
    client.post("/users/newbie/enable", data={"csrf": token})
    assert sign_in(other, "newbie").status_code == 303
    changes = [e.detail for e in entries(setup, user="ada") if e.action.startswith("user-")]
    assert {"name": "newbie", "change": "disabled"} in changes and {"name": "newbie", "change": "enabled"} in changes


def test_a_bad_account_is_refused_with_the_reason_and_nothing_added(client):
    sign_in(client, "ada")
    token = form_token(client.get("/users").text)
    answer = client.post("/users", data={"csrf": token, "name": "<b>x</b>", "password": "short", "role": "viewer"})
    assert answer.status_code == 400
    assert "<b>x</b>" not in answer.text
    assert answer.text.count('class="error"') == 1


def test_the_audit_page_shows_entries_filtered_by_user_and_action(client):
    sign_in(client, "tess", "a wrong password here")
    sign_in(client, "otto")
    page = client.get("/audit", params={"action": "login-failed"})
    assert page.status_code == 200
    assert "login-failed" in page.text and "tess" in page.text
    only_otto = client.get("/audit", params={"user": "otto"}).text
    assert "tess" not in only_otto.split('id="entries"')[1]
    bad = client.get("/audit", params={"since": "yesterday'; DROP TABLE audit; --"})
    assert bad.status_code == 400 and "give a span" in bad.text


def test_a_csrf_token_of_an_ended_session_is_refused_in_the_next(client):
    sign_in(client, "ada")
    old = form_token(client.get("/users").text)
    client.post("/logout", data={"csrf": old})
    sign_in(client, "ada")
    replayed = client.post("/users/vera/disable", data={"csrf": old})
    assert replayed.status_code == 403
    assert "active" in client.get("/users").text.split("vera", 1)[1][:200]
