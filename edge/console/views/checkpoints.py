"""The checkpoints a user may see: their state now and the last week; one checkpoint's history by the hour."""

from __future__ import annotations

import datetime
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from edge.console.views import charts
from edge.console.views.web import console, in_scope, page, require
from edge.core.errors import SpanError
from edge.core.spans import parse_span

HOUR, DAY = 3_600_000, 86_400_000
DAYS_SHOWN = 7
MOST_HOURS = 31 * 24  # one checkpoint's history: at most a month of hourly bars per page


def now_ms() -> int:
    return int(time.time() * 1000)


def checkpoints(request: Request) -> Response:
    session = require(request, "checkpoints")
    until = now_ms()
    today = until - until % DAY + DAY
    since = today - DAYS_SHOWN * DAY
    rows = []
    with console(request).store() as store:
        for cp in store.checkpoints(sites=session.user.sites):
            days = store.activity(cp.site, cp.checkpoint, since, today, DAY)
            gaps = [g for g in store.gaps(since, until, place=(cp.site, cp.checkpoint)) if g.kind == "offline"]
            rows.append({"cp": cp, "days": days, "offline": gaps})
    return page(request, "checkpoints.html", rows=rows, day_starts=range(since, today, DAY))


def checkpoint(request: Request) -> Response:
    session = require(request, "checkpoints")
    site, name = request.path_params["site"], request.path_params["checkpoint"]
    in_scope(session, site)
    until_ms, since_ms = period(request.query_params.get("since", "24h"), request.query_params.get("until", ""))
    since_ms -= since_ms % HOUR
    with console(request).store() as store:
        found = [c for c in store.checkpoints(sites=frozenset({site})) if c.checkpoint == name]
        if not found:
            raise HTTPException(404, "There is no such checkpoint among the sites you may see.")
        hours = store.activity(site, name, since_ms, until_ms, HOUR)
        gaps = store.gaps(since_ms, until_ms, place=(site, name))
    totals = {k: sum(getattr(b, k) for b in hours) for k in ("events", "persons", "faces", "unsynced")}
    return page(
        request,
        "checkpoint.html",
        cp=found[0],
        hours=hours,
        gaps=gaps,
        totals=totals,
        chart=charts.bars(hours, HOUR, gaps=gaps),
        since=request.query_params.get("since", "24h"),
        until=request.query_params.get("until", ""),
        since_ms=since_ms,
        until_ms=until_ms,
    )


def period(since: str, until: str) -> tuple[int, int]:
    """(until_ms, since_ms) from the form: `since` a span back from `until` or a date; `until` a date or now."""
    until_ms = moment(until, "until") if until.strip() else now_ms()
    try:
        since_ms = until_ms - int(parse_span(since.strip()).total_seconds() * 1000)
    except SpanError:
        since_ms = moment(since, "since")
    if since_ms >= until_ms:
        raise HTTPException(400, "The period must start before it ends.")
    if until_ms - since_ms > MOST_HOURS * HOUR:
        raise HTTPException(400, f"A period of at most {MOST_HOURS // 24} days is shown at a time.")
    return until_ms, since_ms


def moment(text: str, name: str) -> int:
    """A date or date and time in UTC as people type them: 2030-06-01, 2030-06-01T10:00, 2030-06-01 10:00."""
    try:
        parsed = datetime.datetime.fromisoformat(text.strip()[:40])
    except ValueError:
        raise HTTPException(
            400, f"{name}: give a span such as 24h or 7d, or a date such as 2030-06-01 or 2030-06-01 10:00 (UTC)."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp() * 1000)
