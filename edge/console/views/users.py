"""Accounts, for admins: list, add, disable or enable, set a new password. Each change is audited by accounts."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge.console.views.web import address, check_token, console, field, page, require
from edge.core.errors import TraceonError

NAME_MOST, PASSWORD_MOST, SITES_MOST = 64, 1024, 2000
DONE = {"added": "Account added.", "changed": "Account changed."}


def users_page(request: Request, why: str = "", status: int = 200, done: str = "") -> Response:
    from edge.console import accounts

    require(request, "users")
    done = done or DONE.get(request.query_params.get("done", ""), "")
    everyone = accounts.users(console(request).db())
    return page(request, "users.html", status, users=everyone, roles=accounts.ROLES, why=why, done=done)


async def change(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    return await run_in_threadpool(_change, request, form)


def _change(request: Request, form) -> Response:
    from edge.console import accounts

    session = require(request, "users")
    check_token(session, form)
    action = request.path_params.get("action", "add")
    by, at = session.user.name, address(request)
    db = console(request).db()
    try:
        with db.transaction() as tx:
            if action == "add":
                sites_text = field(form, "sites", SITES_MOST)
                sites = frozenset(s for s in sites_text.replace(",", " ").split()) or None
                role = field(form, "role", 20)
                accounts.add_user(tx, field(form, "name", NAME_MOST), _password(form), role, sites, by, at)
            else:
                name = request.path_params["name"]
                if accounts.user_in(tx, name) is None:
                    raise HTTPException(404, "There is no such account.")
                if action == "disable":
                    if name == by:
                        raise HTTPException(400, "You cannot disable your own account.")
                    accounts.disable(tx, name, by, at)
                elif action == "enable":
                    accounts.enable(tx, name, by, at)
                elif action == "password":
                    accounts.set_password(tx, name, _password(form), by, at)
                else:
                    raise HTTPException(404, "There is no such change.")
    except (TraceonError, ValueError) as e:
        return users_page(request, str(e), 400)
    return RedirectResponse(f"/users?done={'added' if action == 'add' else 'changed'}", status_code=303)


def _password(form) -> str:
    password = form.get("password", "")
    if not isinstance(password, str) or len(password) > PASSWORD_MOST:
        raise HTTPException(400, f"A password is text of at most {PASSWORD_MOST} characters.")
    return password
