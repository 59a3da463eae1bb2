"""The ASGI application: the API router, authentication, and error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from legato.errors import MissingExtraError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from legato.client import Client


def create_app(client: Client | None = None, *, token: str | None = None) -> FastAPI:
    """The API over ``client`` (default: the configured store).

    With ``token``, every API call needs ``Authorization: Bearer <token>``.
    """
    try:
        from fastapi import FastAPI
    except ImportError:
        raise MissingExtraError("server", "fastapi", "the legato server") from None
    from legato import __version__
    from legato.client import Client
    from legato.server.api import router
    from legato.server.errors import install_error_handlers

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
    )
    app.state.client = used
    app.state.token = token
    install_error_handlers(app)
    app.include_router(router)
    return app
