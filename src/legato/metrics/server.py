"""``GET /metrics`` on `legato server` (Prometheus text exposition format).

Token rules as the API's (`legato.server.security`): when the server has an API
token (always, off loopback), a scrape needs ``Authorization: Bearer`` with it or
with ``LEGATO_METRICS_TOKEN``; a metrics token alone also guards a loopback server.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import Response

from legato import settings
from legato.server.security import token_matches


def install_metrics(app: FastAPI) -> None:
    """Serve ``/metrics`` from the app's client's store (store ops timed from now on).
    Without prometheus-client (the ``server`` or ``metrics`` extra), there is no
    ``/metrics``: a scrape gets 404."""
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        return
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    from legato.metrics.collector import StoreCollector
    from legato.metrics.store_timing import instrument_store

    store = app.state.client.store
    timings = instrument_store(store)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        StoreCollector(store, cache_seconds=settings.metrics_cache_seconds(), timings=timings)
    )
    scrape_token = settings.metrics_token()

    @app.get("/metrics", include_in_schema=False)
    def metrics(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        tokens = [t for t in (request.app.state.token, scrape_token) if t is not None]
        if tokens:
            scheme, _, given = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not any(token_matches(given, t) for t in tokens):
                raise HTTPException(
                    status_code=401,
                    detail="missing or wrong token: send 'Authorization: Bearer <token>' with "
                    "LEGATO_METRICS_TOKEN or LEGATO_API_TOKEN",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
