"""Database URLs as messages may show them: every secret replaced by ***.

libpq takes a password in the user part (`user:pw@host`) and as query parameters (`?password=`, and
`sslpassword=` for the client key); `passfile` and `sslkey` name files, which are not secrets themselves.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote

SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
HIDDEN = "***"


class _Parts(NamedTuple):
    scheme: str
    user: str | None  # None: no user part
    password: str | None  # None: no `:` in the user part
    where: str  # hosts, port and database
    query: list[tuple[str, str | None]] | None  # (name as written, value or None without `=`)


def _split(url: str) -> _Parts | None:
    """The URL split as libpq splits it, not as urlsplit does: a `?` or `#` before the `@` is part of the
    password, a `#` after the `?` part of a value. None for what is not a URL (a file path)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    userinfo, user, password = rest.partition("/")[0].rpartition("@")[0], None, None
    if userinfo:
        rest = rest[len(userinfo) + 1 :]
        user, colon, password = userinfo.partition(":")
        password = password if colon else None
    where, question, query = rest.partition("?")
    pairs = [(name, value if equals else None) for name, equals, value in (p.partition("=") for p in query.split("&"))]
    return _Parts(scheme, user, password, where, pairs if question else None)


def redacted(url: str) -> str:
    """The URL without its passwords, for messages (a file path is shown as it is)."""
    parts = _split(url)
    if parts is None:
        return url
    shown = f"{parts.scheme}://"
    if parts.user is not None:
        shown += parts.user + ("" if parts.password is None else f":{HIDDEN}") + "@"
    shown += parts.where
    if parts.query is not None:
        shown += "?" + "&".join(
            name if value is None else f"{name}={HIDDEN if unquote(name) in SECRET_PARAMETERS else value}"
            for name, value in parts.query
        )
    return shown


def scrubbed(text: str, url: str) -> str:
    """`text` (say, a driver's error, which may quote the password it could not parse) without `url`'s secrets."""
    parts = _split(url)
    secrets = {url} if parts is None else {url, parts.password or ""}
    if parts and parts.query:
        secrets |= {value for name, value in parts.query if value and unquote(name) in SECRET_PARAMETERS}
    for secret in sorted({form for s in secrets if s for form in (s, unquote(s))}, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text
