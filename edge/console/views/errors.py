"""Every refusal and failure as a page for a person: what happened and what to do, never a traceback."""

from __future__ import annotations

import logging
import sqlite3

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge.console.security import MB, BodyTooLarge, add_headers
from edge.console.views.state import DatabaseDown
from edge.console.views.web import NotSignedIn, error_page
from edge.core.errors import ConsoleDbError, TraceonError

log = logging.getLogger("traceon.console")


def too_large_message(limit: int) -> str:
    return (
        f"The request was larger than this page takes ({limit // MB or 1} MB at most; a trace takes up to four "
        "photos of at most 20 MB each). Nothing was stored: send smaller photos or fewer."
    )


def _with_headers(request: Request, response: Response) -> Response:
    add_headers(response.headers, request.url.path)
    return response


async def http_error(request: Request, exc: HTTPException) -> Response:
    return error_page(request, exc.status_code, str(exc.detail))


async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
    return RedirectResponse("/login", status_code=303)


async def too_large(request: Request, exc: BodyTooLarge) -> Response:
    return error_page(request, 413, too_large_message(exc.limit))


async def database_down(request: Request, exc: Exception) -> Response:
    message = str(exc) if isinstance(exc, DatabaseDown | ConsoleDbError) else "the database stopped answering"
    log.warning("database: %s", message)
    return error_page(
        request, 503, f"The console cannot use its database: {message}. Nothing was done; try again later."
    )


async def refused(request: Request, exc: TraceonError) -> Response:
    return error_page(request, 400, str(exc))


async def server_error(request: Request, exc: Exception) -> Response:
    # ServerErrorMiddleware calls this outside the other middleware: the headers are added here
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _with_headers(request, error_page(request, 500, "The server failed on this page; it is logged."))


def _database_errors() -> list[type[Exception]]:
    found: list[type[Exception]] = [sqlite3.OperationalError, sqlite3.DatabaseError]
    try:
        import psycopg

        found.append(psycopg.OperationalError)
    except ImportError:
        pass
    return found


HANDLERS: dict = {
    HTTPException: http_error,
    NotSignedIn: not_signed_in,
    BodyTooLarge: too_large,
    DatabaseDown: database_down,
    ConsoleDbError: database_down,
    TraceonError: refused,
    Exception: server_error,
    **dict.fromkeys(_database_errors(), database_down),
}
