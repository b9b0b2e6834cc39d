"""A kept trace as CSV, JSON or a standalone HTML page; each export is audited before it is sent."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from edge.console.views.trace import kept_result
from edge.console.views.web import address, console, require

TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "html": "text/html; charset=utf-8"}


def export(request: Request) -> Response:
    from edge.console import audit
    from edge.tracer import report

    session = require(request, "export")
    fmt = request.path_params["fmt"]
    if fmt not in TYPES:
        raise HTTPException(404, "Exports are csv, json or html.")
    kept = kept_result(request, request.path_params["number"])
    text = {"csv": report.as_csv, "json": report.as_json, "html": report.as_html}[fmt](kept.trace)
    c = console(request)
    detail = {"case_id": kept.case_id, "trace": kept.number, "format": fmt, "bytes": len(text.encode())}
    with c.db().transaction() as tx:
        audit.record(tx, c.audit_key(), session.user.name, "export", address(request), detail)
    name = f"trace-{kept.number}.{fmt}"
    return Response(text, media_type=TYPES[fmt], headers={"Content-Disposition": f'attachment; filename="{name}"'})
