"""What every response of the console carries, and how much a request may send.

The headers keep the pages from being framed, sniffed or made to run script from anywhere but the console's
own files; the body limit stops an upload before it fills memory (photos are hashed in memory, never spooled).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MB = 1024 * 1024
PHOTOS, PHOTO_BYTES = 4, 20 * MB  # the trace form's upload: 1 to 4 photos of at most 20 MB each
UPLOAD_LIMIT = PHOTOS * PHOTO_BYTES + MB  # the photos and the form's own fields
FORM_LIMIT = 256 * 1024  # any other POST: a login, a user change, a notice
UPLOAD_PATHS = ("/trace",)


def add_headers(headers: MutableHeaders, path: str) -> None:
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    # Pages may show FaceHashes and who traced whom: no copy in any cache. The vendored files may be cached.
    headers.setdefault("Cache-Control", "public, max-age=3600" if path.startswith("/static/") else "no-store")


def body_limit(path: str) -> int:
    return UPLOAD_LIMIT if path in UPLOAD_PATHS else FORM_LIMIT


class BodyTooLarge(Exception):
    """A request body beyond the limit of its route; the app answers 413 with a page saying the limit."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit // MB or 1} MB")
        self.limit = limit


class Guard:
    """ASGI middleware: the security headers on every response, and the body limit on every request.

    A declared Content-Length over the limit is answered at once; a body that grows past it while it is read
    (chunked, or lying about its length) raises BodyTooLarge inside the endpoint, which the app's handler
    turns into the same page.
    """

    def __init__(self, app: ASGIApp, too_large: Callable[[int], Response]):
        self.app = app
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(MutableHeaders(scope=message), path)
            await send(message)

        limit = body_limit(path)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self.too_large(limit)(scope, receive, send_with_headers)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send_with_headers)
