"""Who may call the server, and protection against requests forged by other sites.

- With a token (``LEGATO_API_TOKEN``), API calls carry ``Authorization: Bearer``;
  the UI asks for the token once and keeps a session cookie (HttpOnly,
  SameSite=Strict) holding an HMAC of it, never the token itself.
- The session cookie is enough for the API's reads (the UI's live updates),
  never for its writes: a write needs the bearer token, so a page on another
  site cannot act through a logged-in browser.
- UI forms that change state carry a CSRF token equal to a random cookie
  (double submit), and a request whose Origin is another site is refused.
  This holds without a token too: a server on 127.0.0.1 is reachable from any
  page the person's browser opens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Header, HTTPException, Request

SESSION_COOKIE = "legato_session"
CSRF_COOKIE = "legato_csrf"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_value(token: str) -> str:
    """What the session cookie holds: a keyed hash of the token, not the token."""
    return hmac.new(token.encode(), b"legato-ui-session", hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def has_session(request: Request) -> bool:
    """True when no token is configured, or the request holds a valid session."""
    token: str | None = request.app.state.token
    if token is None:
        return True
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session_value(token).encode())


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """The API's guard: a bearer token (when configured), or the UI's session for
    reads; and no writes from pages of other sites."""
    if request.method not in _SAFE_METHODS and not same_origin(request):
        raise HTTPException(status_code=403, detail="cross-site request refused")
    token: str | None = request.app.state.token
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(given, token):
        return
    if request.method in _SAFE_METHODS and has_session(request):
        return
    raise HTTPException(
        status_code=401,
        detail="missing or wrong API token: send 'Authorization: Bearer <LEGATO_API_TOKEN>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def csrf_token(request: Request) -> tuple[str, bool]:
    """This browser's CSRF token, and whether it is new (then set the cookie)."""
    current = request.cookies.get(CSRF_COOKIE)
    if current and len(current) >= 32:
        return current, False
    return secrets.token_urlsafe(32), True


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a state-changing form that did not come from one of our pages."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if (
        not same_origin(request)
        or not submitted
        or not cookie
        or not hmac.compare_digest(cookie.encode(), submitted.encode())
    ):
        raise HTTPException(
            status_code=403,
            detail="this form expired or came from another site: reload the page and try again",
        )
