"""Cross-site request forgery: every state-changing request carries a token the attacker's
page cannot know.

Signed-in requests carry the session's own random token (a hidden ``csrf_token`` form field,
or the ``X-CSRF-Token`` header that htmx sends for every request, set from a meta tag). The
login form, before any session exists, uses a double-submit token: a random value in a
SameSite=Strict cookie that the form must echo. Cookies are SameSite=Strict as well, so two
independent defences have to fail together.
"""

from __future__ import annotations

import hmac
import secrets

FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
LOGIN_COOKIE = "socpipe_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_CHARS = 128


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, presented: str | None) -> bool:
    """Constant-time comparison; a missing or oversized token never matches."""
    if not expected or not presented or len(presented) > MAX_TOKEN_CHARS:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))


def needs_token(method: str) -> bool:
    return method.upper() not in SAFE_METHODS
