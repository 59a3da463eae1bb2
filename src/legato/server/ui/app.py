"""Mount the UI on the API's application: pages, forms, static files, and the
error pages a person sees instead of JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from legato.errors import LegatoError
from legato.server.errors import status_for
from legato.server.ui.pages import LoginRequired
from legato.server.ui.render import HERE, SECURITY_HEADERS, make_templates, render

if TYPE_CHECKING:
    from fastapi import FastAPI


def install_ui(app: FastAPI) -> None:
    from legato.server.ui import (
        actions,
        ai_pages,
        automations_page,
        events_page,
        notifications_page,
        pages,
    )

    app.state.templates = make_templates()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(events_page.router)
    app.include_router(notifications_page.router)
    app.include_router(automations_page.router)
    app.include_router(ai_pages.router)
    app.include_router(actions.acting)
    app.include_router(actions.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if not request.url.path.startswith(("/api", "/docs", "/openapi.json")):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    async def login_required(request: Request, exc: Exception) -> Response:
        target = exc.next_url if isinstance(exc, LoginRequired) else "/"
        url = request.url_for("ui_login").include_query_params(next=target)
        return RedirectResponse(str(url), status_code=303)

    app.add_exception_handler(LoginRequired, login_required)


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/openapi.json", "/docs"))


def error_page(request: Request, error: LegatoError | HTTPException) -> Response:
    """An error as a page: what happened and what to do, in the site's frame."""
    if isinstance(error, HTTPException):
        status, detail = error.status_code, str(error.detail)
    else:
        status, detail = status_for(error), str(error)
    return render(request, "error.html", {"status": status, "detail": detail}, status_code=status)
