"""Templates, their filters, and the response every page goes through: it sets
the CSRF cookie on first visit and the security headers on every answer."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from legato.client import Client
from legato.client.views import jsonable
from legato.records import Schedule
from legato.server.security import CSRF_COOKIE, csrf_token

HERE = Path(__file__).parent
DASH = "\u2013"  # what an empty value shows

# Scripts and styles only from this server: an injected <script> would not run
# even if escaping failed somewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _as_utc(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(value: datetime | str | None) -> str:
    """``2026-11-30 09:15:02`` in UTC, or a dash."""
    moment = _as_utc(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else DASH


def seconds(value: float | None) -> str:
    if value is None:
        return DASH
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def span(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return DASH
    finish = end or datetime.now(UTC)
    text = seconds((finish - start).total_seconds())
    return text if end else f"{text} so far"


def clock(value: datetime | None) -> str:
    """``09:15:02.123`` in UTC (log lines)."""
    moment = _as_utc(value)
    return moment.strftime("%H:%M:%S.%f")[:-3] if moment else ""


def pretty(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2, sort_keys=True)


def schedule_text(schedule: Schedule) -> str:
    from legato.schedules import describe

    return describe(schedule)


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.autoescape = True  # every template, whatever its name
    env.filters.update(
        when=when,
        iso_when=when,
        seconds=seconds,
        span=span,
        pretty=pretty,
        schedule_text=schedule_text,
        level=logging.getLevelName,
        clock=clock,
    )
    return templates


def client_of(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    section: str | None = None,
) -> HTMLResponse:
    """A page, with this browser's CSRF token in its forms."""
    token, new = csrf_token(request)
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(
        request,
        template,
        {
            **context,
            "csrf": token,
            "section": section,
            "logged_in": request.app.state.token is not None,
        },
        status_code=status_code,
    )
    if new:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_https(request)
        )
    return response


def _https(request: Request) -> bool:
    return request.url.scheme == "https"
