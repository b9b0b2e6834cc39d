"""Exposure notices: published from a kept trace's visit (place and time only), listed publicly, withdrawn.

A notice holds no FaceHash and no case id. After each change the checkpoint's current notices are published
retained over MQTT when the console was given a broker; the page says so when that fails (the notice stands).
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge.console.views.trace import kept_result
from edge.console.views.web import address, check_token, console, in_scope, page, require, signed_in

log = logging.getLogger("traceon.console")


def public(request: Request) -> Response:
    """Current notices of place and time: no login (a door display or a website shows this page)."""
    from edge.console import notices

    session = _maybe_signed_in(request)
    tracer = session is not None and session.user.may("notices")
    shown = notices.current(console(request).db())
    if session is not None:
        shown_to = session.user
        withdrawable = {n.id for n in shown if tracer and shown_to.sees(n.site)}
    else:
        withdrawable = set()
    return page(request, "notices.html", notices=shown, withdrawable=withdrawable)


def _maybe_signed_in(request: Request):
    try:
        return signed_in(request)
    except Exception:
        return None  # the public list does not depend on who asks


async def publish(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    return await run_in_threadpool(_publish, request, form)


def _publish(request: Request, form) -> Response:
    from edge.console import notices

    session = require(request, "notices")
    check_token(session, form)
    kept = kept_result(request, form.get("trace", ""))
    try:
        visit = kept.trace.visits[int(form.get("visit", ""))]
    except (ValueError, IndexError):
        raise HTTPException(400, "There is no such visit in this trace.") from None
    in_scope(session, visit.site)
    from_ms, to_ms = visit.first_ms - kept.trace.stride_ms, visit.last_ms + kept.trace.stride_ms
    c = console(request)
    with c.db().transaction() as tx:
        notices.publish(tx, c.audit_key(), visit.site, visit.checkpoint, from_ms, to_ms, session.user.name,
                        address(request))  # fmt: skip
    return RedirectResponse(f"/trace/{kept.number}?said={_sent(c, visit.site, visit.checkpoint)}", status_code=303)


async def withdraw(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    return await run_in_threadpool(_withdraw, request, form)


def _withdraw(request: Request, form) -> Response:
    from edge.console import notices

    session = require(request, "notices")
    check_token(session, form)
    c = console(request)
    try:
        number = int(request.path_params["notice"])
    except ValueError:
        raise HTTPException(404, "There is no such notice.") from None
    found = [n for n in notices.current(c.db()) if n.id == number]
    if not found:
        raise HTTPException(404, "There is no such current notice.")
    in_scope(session, found[0].site)
    with c.db().transaction() as tx:
        notices.withdraw(tx, c.audit_key(), number, session.user.name, address(request))
    _sent(c, found[0].site, found[0].checkpoint)
    return RedirectResponse("/notices", status_code=303)


def _sent(c, site: str, checkpoint: str) -> str:
    """Publish the checkpoint's current notices over MQTT; a key of SAID for what the tracer should know."""
    from edge.console import notices

    publisher = c.publisher()
    if publisher is None:
        return "listed"
    try:
        publisher.publish_place(site, checkpoint, notices.for_place(c.db(), site, checkpoint))
    except Exception:  # the notice is stored and listed: a broker that is away must not undo it
        log.warning("notices of %s/%s not sent to the broker", site, checkpoint, exc_info=True)
        return "unsent"
    return "sent"
