"""`build_app(settings)`: the operators' console as a Starlette app, served by uvicorn (`traceon-edge console`).

Pages are Jinja2 templates with autoescaping; the only script is the vendored HTMX (static/VENDORED.md);
blocking database and trace work runs in Starlette's threadpool. Every refusal or failure is a page of its own
(views/errors.py), and every response carries the headers of security.py.
"""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware

from edge.console import security
from edge.console.views import errors, routes
from edge.console.views.state import Console, ConsoleSettings
from edge.console.views.web import error_page

__all__ = ["ConsoleSettings", "build_app"]


def build_app(settings: ConsoleSettings) -> Starlette:
    console = Console(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        console.close()

    def too_large(limit: int):
        return error_page(None, 413, errors.too_large_message(limit))

    app = Starlette(
        routes=routes.ROUTES,
        middleware=[Middleware(security.Guard, too_large=too_large)],
        exception_handlers=errors.HANDLERS,
        lifespan=lifespan,
    )
    app.state.console = console
    return app
