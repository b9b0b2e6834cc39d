"""Cross-site request forgery: every POST must carry a token that only the console's own page could hold.

Signed in, the token is the session's own (Session.csrf, a synchronizer token kept server-side). Before a
session exists, the login form uses a double submit: a random value in a cookie and its HMAC under this
process's secret in the form, so a page elsewhere can neither read the cookie nor forge the pair.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PRE_SESSION_COOKIE = "traceon_login"


class Signer:
    def __init__(self, secret: bytes | None = None):
        self._secret = secret or secrets.token_bytes(32)  # a restart asks for a fresh login form, nothing more

    @staticmethod
    def new_value() -> str:
        return secrets.token_urlsafe(32)

    def sign(self, value: str) -> str:
        return hmac.new(self._secret, b"login-form\0" + value.encode(), hashlib.sha256).hexdigest()

    def login_ok(self, cookie: str | None, field: str | None) -> bool:
        """The login form's token matches its cookie (both present, the field signed by this process)."""
        if not cookie or not field:
            return False
        return hmac.compare_digest(self.sign(cookie), field)


def session_ok(expected: str, given: str | None) -> bool:
    """The form's token is the session's own: not missing, not another session's, not a guess."""
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
