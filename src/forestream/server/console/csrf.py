"""The console's defence against cross-site requests to its actions.

The request guard already refuses a request whose ``Origin`` is another site, and the
console's cookie is ``SameSite=Strict``. Actions also need a token that only the
console's own pages carry (in each form, and in htmx's ``X-Forestream-CSRF`` header): a
keyed hash of a secret the server holds, so it survives restarts, differs per server,
and tells nothing about the secret. A browser that remembers HTTP Basic credentials
would otherwise send them with a forged form from anywhere that sends no ``Origin``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from forestream.config import Settings

HEADER = "x-forestream-csrf"
FIELD = "csrf"
_PROCESS_KEY = secrets.token_bytes(32)  # a server with neither token nor credentials


def token_for(settings: Settings, access_token: str | None) -> str:
    """The CSRF token of this server's console pages."""
    key = (access_token or settings.secret_access_key or "").encode() or _PROCESS_KEY
    return hmac.new(key, b"forestream console actions", hashlib.sha256).hexdigest()[:40]


def valid(expected: str, header: str | None, form_value: str | None) -> bool:
    """Whether the request carries the token (header or form field), in constant time."""
    offered = [v for v in (header, form_value) if v]
    return any(hmac.compare_digest(v.encode(), expected.encode()) for v in offered)
