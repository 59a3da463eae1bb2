"""The ASGI application: the API, the web UI, authentication, and error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from legato.errors import MissingExtraError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from legato.client import Client


def create_app(
    client: Client | None = None,
    *,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The API and web UI over ``client`` (default: the configured store).

    With ``token``, every API call needs ``Authorization: Bearer <token>`` and
    the UI asks for the token once (then a session cookie). ``allowed_hosts``:
    the only ``Host`` headers answered (`legato server` on loopback without a
    token sets it, so that a site whose name is rebound to 127.0.0.1 cannot
    read or act through the person's browser).
    """
    try:
        import jinja2  # noqa: F401
        import swagger_ui_bundle
        from fastapi import FastAPI
    except ImportError as exc:
        raise MissingExtraError("server", exc.name or "fastapi", "the legato server") from None
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    from legato import __version__
    from legato.client import Client
    from legato.server.api import router
    from legato.server.api_ai import router as ai_router
    from legato.server.api_automations import router as automations_router
    from legato.server.api_events import router as events_router
    from legato.server.api_llm_stream import router as llm_stream_router
    from legato.server.api_orchestration import router as orchestration_router
    from legato.server.errors import install_error_handlers
    from legato.server.methods import HttpMethods
    from legato.server.ui import install_ui
    from legato.server.webhooks import router as webhooks_router

    used = client or Client()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if client is None:  # the store this app opened itself
            used.store.close()

    app = FastAPI(
        title="legato",
        version=__version__,
        description="Flow runs, task runs, deployments, workers and limits of a legato store.",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own copy of Swagger UI
        redoc_url=None,
    )
    app.state.client = used
    app.state.token = token
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(orchestration_router)
    app.include_router(webhooks_router)
    app.include_router(events_router)
    app.include_router(automations_router)
    app.include_router(ai_router)
    app.include_router(llm_stream_router)

    # Swagger UI from the installed package, not a CDN: nothing is fetched from
    # the internet when someone opens /docs.
    app.mount(
        "/docs-assets",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="docs-assets",
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="legato API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    from legato.metrics.server import install_metrics

    install_metrics(app)  # /metrics, when prometheus-client is installed
    install_ui(app)
    app.add_middleware(HttpMethods, routes=app.router.routes)
    if allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app
