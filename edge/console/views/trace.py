"""Trace a case: FaceHashes pasted or 1–4 photos hashed in memory, a case id and a reason, audited before shown.

The search is the command line's (edge.tracer.trace.run), limited to the user's sites; the report is the one
`traceon-edge trace` writes (edge.tracer.report.html_body). The audit row is committed before the result is
rendered: a trace that cannot be recorded is not shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from edge.console.views import uploads
from edge.console.views.results import Kept
from edge.console.views.state import DatabaseDown
from edge.console.views.web import address, check_token, console, field, page, require, session_cookie
from edge.core import fh2
from edge.core.errors import ConsoleDbError, SpanError, TraceonError
from edge.core.spans import parse_span

TEXT_MOST, CODES_MOST = 1000, 20_000  # longer is refused unread; audit.checked_text bounds what is kept
STRIDE_MOST_S = 86_400

# after a notice is published from a trace, its page says one of these (a key in the URL, never text from it)
SAID = {
    "listed": "Notice published: it is listed on /notices (this console publishes to no broker).",
    "sent": "Notice published: it is listed on /notices and sent to the checkpoint's display.",
    "unsent": "Notice published: it is listed on /notices, but the broker could not be reached; it is sent again "
    "with the checkpoint's next change.",
}


@dataclass
class Asked:
    codes_text: str = ""
    case_id: str = ""
    reason: str = ""
    since: str = "14d"
    stride: str = "30m"


def photo_tracing() -> tuple[bool, str]:
    try:
        from edge.console import photos
    except ImportError:
        return False, "photo tracing is not part of this installation"
    return photos.available()


def trace_form(request: Request, asked: Asked | None = None, why: str = "", status: int = 200) -> Response:
    require(request, "trace")
    can, cannot = photo_tracing()
    return page(request, "trace.html", status, asked=asked or Asked(), why=why, photos_ok=can, photos_why=cannot)


async def trace(request: Request) -> Response:
    session = await run_in_threadpool(require, request, "trace")  # before an upload of up to 81 MB is read
    try:
        data = await uploads.form(request)
        check_token(session, data)
        photos = await uploads.photos(data)
    except uploads.UploadRefused as e:
        return await run_in_threadpool(trace_form, request, None, str(e), 400)
    asked = Asked(
        codes_text=field(data, "facehashes", CODES_MOST),
        case_id=field(data, "case_id", TEXT_MOST),
        reason=field(data, "reason", TEXT_MOST),
        since=field(data, "since", 20) or "14d",
        stride=field(data, "stride", 20) or "30m",
    )
    try:
        return await run_in_threadpool(_trace, request, session, asked, photos)
    except (DatabaseDown, ConsoleDbError):
        raise  # not the form's fault: the "database is down" page
    except (TraceonError, Refusal) as e:
        return await run_in_threadpool(trace_form, request, asked, str(e), 400)


class Refusal(ValueError):
    """What the person must change in the form."""


def _trace(request: Request, session, asked: Asked, photos: list[tuple[str, bytes]]) -> Response:
    from edge.console import audit
    from edge.tracer import report
    from edge.tracer.trace import run

    audit.checked_text(asked.case_id, "the case id")  # required, one line, bounded: checked before any search
    audit.checked_text(asked.reason, "the reason (why this person is traced: it is kept in the audit log)")
    since, stride = _span(asked.since, "window"), _span(asked.stride, "stride")
    if stride.total_seconds() > STRIDE_MOST_S:
        raise Refusal("The stride may be at most 1 day.")
    codes = asked.codes_text.replace(",", " ").split()
    if photos and codes:
        raise Refusal("Give either FaceHashes or photos, not both.")
    c = console(request)
    with c.store() as store:
        notes: list[str] = []
        if photos:
            codes, used, notes = _hash(c, store, photos, since.total_seconds())
        elif codes:
            used = 1
        else:
            raise Refusal("Paste one or more FaceHashes of the person, or upload 1 to 4 photos of them.")
        result = run(store, codes, stride, since, photos=used, sites=session.user.sites)
    key = c.audit_key()
    detail = audit.trace_detail(
        key,
        case_id=asked.case_id,
        reason=asked.reason,
        codes=codes,
        since_ms=result.since_ms,
        until_ms=result.until_ms,
        stride_ms=result.stride_ms,
        rows_searched=result.point.rows,
        hits=len(result.sightings),
        sites=session.user.sites,
    )
    detail |= {"from": "photos" if photos else "facehashes", "photos": used if photos else 0}
    with c.db().transaction() as tx:
        audit.record(tx, key, session.user.name, "trace", address(request), detail)
    kept = c.results.keep(request.cookies[session_cookie(request)], result, asked.case_id)
    return result_page(request, kept, notes, report)


def result_page(request: Request, kept: Kept, notes: list[str], report=None, said: str = "") -> Response:
    if report is None:
        from edge.tracer import report
    t = kept.trace
    visits = [
        {"index": i, "site": v.site, "checkpoint": v.checkpoint, "from_ms": v.first_ms - t.stride_ms,
         "to_ms": v.last_ms + t.stride_ms, "sightings": len(v.sightings), "contacts": len(v.contacts)}
        for i, v in enumerate(t.visits)
    ]  # fmt: skip
    return page(
        request,
        "trace_result.html",
        kept=kept,
        notes=notes,
        said=said,
        visits=visits,
        body=Markup(report.html_body(t)),  # the report escapes every value itself
    )


def shown(request: Request) -> Response:
    """A kept trace again (after a notice was published from it): no new search, so no new audit row."""
    require(request, "trace")
    kept = kept_result(request, request.path_params["number"])
    return result_page(request, kept, [], said=SAID.get(request.query_params.get("said", ""), ""))


def kept_result(request: Request, number_text) -> Kept:
    """This session's kept trace of that number (404 when it is another's, gone, or not a number)."""
    try:
        number = int(number_text)
    except ValueError:
        raise HTTPException(404, "There is no such trace.") from None
    kept = console(request).results.get(request.cookies.get(session_cookie(request), ""), number)
    if kept is None:
        raise HTTPException(
            404, "This trace is no longer kept (traces are kept in memory for a while, per session): run it again."
        )
    return kept


def _span(text: str, what: str):
    try:
        return parse_span(text)
    except SpanError as e:
        raise Refusal(f"The {what}: {e}") from None


def _hash(c, store, photos: list[tuple[str, bytes]], since_s: float) -> tuple[list[str], int, list[str]]:
    """The photos' FaceHashes under every key the store holds rows of, hashed in memory: the --key-file keys, and
    each --key-chain's key of every epoch of the window it still holds (one trace searches them all, each
    epoch's rows with its own code). Of scheme fh2 when the store holds fh2 rows of those keys (what units
    publish by default), else fh1. What was left out, and epochs whose key is gone, are said."""
    can, why = photo_tracing()
    if not can:
        raise Refusal(f"Photos cannot be traced here: {why}. Paste FaceHashes instead.")
    if not c.settings.key_files and not c.settings.key_chains:
        raise Refusal(
            "Photos cannot be traced: the console was started without the deployment's --key-file or --key-chain."
        )
    from edge.console import photos as photo_query

    given, notes = list(c.keys()), []
    now = time.time()
    for chain in c.chains():
        given += [key for _, key in chain.keys(*chain.window(since_s, now))]
        gone = chain.gone(since_s, now)
        if gone:
            notes.append(f"Older sightings of this window cannot be traced: {gone}.")
    held = [key for key in given if store.holds(key.id)]
    keys = held or given[:1]  # none held: the photos are still checked first, then refused below
    scheme = "fh2" if any(store.holds(key.id, fh2.BITS, "fh2") for key in held) else "fh1"
    query = photo_query.hash_photos(photos, keys, scheme=scheme)
    if not held:
        raise Refusal(
            "The database holds no sightings under the key(s) the console was given"
            + (" for this window" if c.settings.key_chains else "")
            + (f" ({notes[0]})" if notes else ".")
        )
    notes += [f"{name} was left out: {why}" for name, why in query.left_out]
    return [query.codes[key.id] for key in held], query.photos, notes
