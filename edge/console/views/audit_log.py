"""The audit log, for auditors: entries filtered by user, action and time; a trace's row in full."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from edge.console.views.checkpoints import moment
from edge.console.views.web import console, page, require

ACTIONS = (
    "login", "login-failed", "login-locked", "logout", "trace", "export", "notice", "notice-withdrawn",
    "user-added", "user-changed",
)  # fmt: skip
SHOWN = 500


def audit_log(request: Request) -> Response:
    from edge.console import audit

    require(request, "audit")
    q = request.query_params
    user = q.get("user", "").strip()[:64] or None
    action = q.get("action", "") if q.get("action", "") in ACTIONS else None
    since_ms = moment(q["since"], "since") if q.get("since", "").strip() else None
    until_ms = moment(q["until"], "until") if q.get("until", "").strip() else None
    entries = audit.entries(
        console(request).db(), since_ms=since_ms, until_ms=until_ms, user=user, action=action, limit=SHOWN
    )
    return page(
        request,
        "audit.html",
        entries=entries,
        actions=ACTIONS,
        shown_most=SHOWN,
        asked={k: q.get(k, "")[:64] for k in ("user", "action", "since", "until")},
    )
