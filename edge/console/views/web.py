"""What every page does: find who is signed in, check their role and token, and render a template."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from edge.console import csrf
from edge.console.views.state import Console
from edge.core.spans import span, when

SESSION_COOKIE = "traceon_session"
SECURE_SESSION_COOKIE = "__Host-traceon_session"  # the browser takes it only over HTTPS, for this host, Path=/

templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("edge.console", "templates"),
        autoescape=select_autoescape(["html"]),  # every value a unit or a person sent is escaped
    )
)
templates.env.filters["when"] = when
templates.env.filters["span"] = span


class NotSignedIn(Exception):
    """A page that needs a session, asked without one: answered by a redirect to /login."""


def console(request: Request) -> Console:
    return request.app.state.console


def session_cookie(request: Request) -> str:
    return SECURE_SESSION_COOKIE if console(request).settings.secure_cookies else SESSION_COOKIE


def address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def signed_in(request: Request):
    """The request's Session, or None (no cookie, an unknown, expired or forged token, a disabled user)."""
    if "session" not in request.scope.get("state", {}):
        from edge.console import sessions

        token = request.cookies.get(session_cookie(request))
        request.state.session = sessions.session(console(request).db(), token) if token else None
    return request.state.session


def require(request: Request, permission: str | None = None):
    """The signed-in Session whose role has `permission`; otherwise a redirect to /login or a 403 page."""
    session = signed_in(request)
    if session is None:
        raise NotSignedIn()
    if permission is not None and not session.user.may(permission):
        raise HTTPException(403, f"The {session.user.role} role may not use this page.")
    return session


def check_token(session, form) -> None:
    """Every POST carries the session's own CSRF token; a missing, wrong or another session's one is refused."""
    if not csrf.session_ok(session.csrf, _text(form.get("csrf"))):
        raise HTTPException(403, "This form is out of date or did not come from this console: reload the page.")


def in_scope(session, site: str) -> None:
    if not session.user.sees(site):
        raise HTTPException(403, "This site is not among the sites you may see.")


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def field(form, name: str, most: int = 1000) -> str:
    """A text field, stripped; a file where text belongs, or text beyond `most` characters, is refused."""
    value = form.get(name, "")
    if not isinstance(value, str):
        raise HTTPException(400, f"The field {name} must be text.")
    if len(value) > most:
        raise HTTPException(400, f"The field {name} is longer than {most} characters.")
    return value.strip()


def page(request: Request, template: str, status: int = 200, **context) -> Response:
    session = request.scope.get("state", {}).get("session")
    context.setdefault("user", session.user if session else None)
    context.setdefault("csrf", session.csrf if session else "")
    return templates.TemplateResponse(request, template, context, status_code=status)


def error_page(request: Request | None, status: int, message: str, title: str | None = None) -> Response:
    """The page every refusal and failure shows: the status, what happened, and never a traceback."""
    title = title or TITLES.get(status, "Something went wrong")
    body = templates.get_template("error.html").render(title=title, message=message, status=status, user=None)
    return HTMLResponse(body, status_code=status)


TITLES = {
    400: "This request cannot be used",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    413: "Too large",
    429: "Too many attempts",
    500: "Something went wrong on the server",
    503: "The database is down",
}
