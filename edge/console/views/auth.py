"""Signing in and out, and the start page of each role."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge.console.csrf import PRE_SESSION_COOKIE
from edge.console.views.web import address, check_token, console, field, page, require, session_cookie, signed_in

START = {"admin": "/users", "tracer": "/trace", "auditor": "/audit", "viewer": "/checkpoints"}
NAME_MOST, PASSWORD_MOST = 64, 1024


def home(request: Request) -> Response:
    session = signed_in(request)
    return RedirectResponse(START.get(session.user.role, "/checkpoints") if session else "/login", status_code=303)


def login_form(request: Request, status: int = 200, why: str = "", name: str = "") -> Response:
    c = console(request)
    value = request.cookies.get(PRE_SESSION_COOKIE) or c.signer.new_value()
    response = page(request, "login.html", status, login_token=c.signer.sign(value), why=why, name=name)
    response.set_cookie(
        PRE_SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=c.settings.secure_cookies,
        path="/login",
    )
    return response


async def login(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_login, request, form)


def _login(request: Request, form) -> Response:
    c = console(request)
    if not c.signer.login_ok(request.cookies.get(PRE_SESSION_COOKIE), _str(form.get("csrf"))):
        raise HTTPException(403, "This sign-in form is out of date or did not come from this console: reload it.")
    from edge.console import accounts, sessions

    name, password = field(form, "name", NAME_MOST), form.get("password", "")
    if not isinstance(password, str) or len(password) > PASSWORD_MOST:
        return login_form(request, 400, "Name or password not accepted.", name)
    db = c.db()
    attempt = accounts.login(db, name, password, address(request))
    if attempt.user is None:
        response = login_form(request, 429 if attempt.retry_after_s else 401, attempt.why, name)
        if attempt.retry_after_s:
            response.headers["Retry-After"] = str(attempt.retry_after_s)
        return response
    with db.transaction() as tx:
        token, _ = sessions.open_session(tx, attempt.user.name, address(request))
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        session_cookie(request),
        token,
        httponly=True,
        samesite="strict",
        secure=c.settings.secure_cookies,
        path="/",
    )
    response.delete_cookie(PRE_SESSION_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_logout, request, form)


def _logout(request: Request, form) -> Response:
    from edge.console import audit, sessions

    session = require(request)
    check_token(session, form)
    token = request.cookies[session_cookie(request)]
    with console(request).db().transaction() as tx:
        sessions.close_session(tx, token)
        audit.record(tx, console(request).audit_key(), session.user.name, "logout", address(request), {})
    console(request).results.forget(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie(request), path="/")
    return response


def _str(value) -> str | None:
    return value if isinstance(value, str) else None
