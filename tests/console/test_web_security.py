"""What every response carries and what every request may send, before anyone signs in: the security headers,
the sign-in form's CSRF pair, the body limit, and error pages instead of tracebacks."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from edge.console import security
from edge.console.app import ConsoleSettings, build_app
from edge.console.csrf import PRE_SESSION_COOKIE

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@pytest.fixture
def client(tmp_path):
    app = build_app(ConsoleSettings(db_url=str(tmp_path / "none.db"), audit_key=tmp_path / "none.key"))
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


def assert_guarded(answer, cached: bool = False):
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    if not cached:
        assert answer.headers["cache-control"] == "no-store"


def test_the_login_page_carries_every_header_and_a_signed_token(client):
    answer = client.get("/login")
    assert answer.status_code == 200
    assert_guarded(answer)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(PRE_SESSION_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never come back
    assert 'name="csrf"' in answer.text
    assert '<script src="/static/htmx.min.js"' in answer.text


def test_a_secure_console_marks_its_cookies_secure(tmp_path):
    app = build_app(ConsoleSettings(db_url="x.db", audit_key=tmp_path / "k", secure_cookies=True))
    with TestClient(app, base_url="https://127.0.0.1") as c:
        assert "Secure" in c.get("/login").headers["set-cookie"]


@pytest.mark.parametrize(
    "how",
    ["no token", "no cookie", "wrong token", "token of another cookie"],
)
def test_a_login_post_without_its_form_pair_is_refused(client, how):
    token = _token(client.get("/login").text)
    cookie = client.cookies.get(PRE_SESSION_COOKIE)
    other = TestClient(client.app, base_url="http://127.0.0.1")
    other_token = _token(other.get("/login").text)
    form = {"name": "ada", "password": "x" * 12, "csrf": token}
    if how == "no token":
        del form["csrf"]
    elif how == "no cookie":
        client.cookies.clear()
    elif how == "wrong token":
        form["csrf"] = "0" * 64
    else:
        form["csrf"] = other_token
    assert cookie
    answer = client.post("/login", data=form)
    assert answer.status_code == 403
    assert "did not come from this console" in answer.text
    assert_guarded(answer)


def test_a_body_over_the_limit_is_refused_with_a_page(client):
    answer = client.post("/login", content=b"x" * (security.FORM_LIMIT + 1))
    assert answer.status_code == 413
    assert "Too large" in answer.text and "Nothing was stored" in answer.text
    assert_guarded(answer)


def test_a_chunked_body_that_grows_over_the_limit_is_cut_off(client):
    def chunks():
        for _ in range(security.FORM_LIMIT // 1024 + 2):
            yield b"a=" + b"x" * 1022

    answer = client.post("/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413
    assert "Too large" in answer.text


def test_an_unknown_page_is_the_consoles_404(client):
    answer = client.get("/nothing/here")
    assert answer.status_code == 404
    assert "Not found" in answer.text and "Traceback" not in answer.text
    assert_guarded(answer)


def test_a_wrong_method_is_a_page_too(client):
    answer = client.put("/login")
    assert answer.status_code == 405
    assert "Traceback" not in answer.text and "<h1>" in answer.text


def _token(page: str) -> str:
    import re

    return re.search(r'name="csrf" value="([^"]+)"', page)[1]
