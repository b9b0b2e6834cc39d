"""Every route of the console. Each page checks sign-in, its permission (accounts.PERMISSIONS) and site scope
itself (views/web.require, in_scope); /login, /notices (GET) and /static need no session."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge.console.views import audit_log, auth, checkpoints, export, notices, trace, users


def report_css(request) -> Response:
    """The trace report's stylesheet (report.STYLE): the report's HTML uses classes, the CSP allows no inline style."""
    from edge.tracer import report

    return Response(report.STYLE, media_type="text/css")


ROUTES = [
    Route("/", auth.home),
    Route("/login", auth.login_form, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/checkpoints", checkpoints.checkpoints),
    Route("/checkpoints/{site}/{checkpoint}", checkpoints.checkpoint),
    Route("/trace", trace.trace_form, methods=["GET"]),
    Route("/trace", trace.trace, methods=["POST"]),
    Route("/trace/{number}", trace.shown),
    Route("/trace/{number}/export.{fmt}", export.export),
    Route("/notices", notices.public, methods=["GET"]),
    Route("/notices", notices.publish, methods=["POST"]),
    Route("/notices/{notice}/withdraw", notices.withdraw, methods=["POST"]),
    Route("/audit", audit_log.audit_log),
    Route("/users", users.users_page, methods=["GET"]),
    Route("/users", users.change, methods=["POST"]),
    Route("/users/{name}/{action}", users.change, methods=["POST"]),
    Route("/report.css", report_css),
    Mount("/static", StaticFiles(packages=[("edge.console", "static")]), name="static"),
]
