"""The control plane: a REST API over the same client layer as the CLI.

``legato server`` serves it (``legato[server]``: FastAPI and uvicorn, imported
only here). Every route is a thin view over `legato.client.Client`; no logic
exists twice. The OpenAPI document is at ``/openapi.json``, browsable at
``/docs``.
"""

from __future__ import annotations

from legato.server.app import create_app

__all__ = ["create_app"]
