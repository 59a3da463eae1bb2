"""legato's errors as HTTP answers: what was wrong, with the same messages as the CLI.

API paths answer JSON; UI pages answer an error page with the same message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from legato.errors import (
    AmbiguousRunIdError,
    ConfigurationError,
    DeploymentNotFoundError,
    InvalidRunInputError,
    LegatoError,
    LimitNotFoundError,
    ParameterValidationError,
    RunNotFoundError,
    RunStateError,
    StoreUnavailableError,
    TargetNotFoundError,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

_STATUS: list[tuple[type[LegatoError], int]] = [
    (RunNotFoundError, 404),
    (DeploymentNotFoundError, 404),
    (LimitNotFoundError, 404),
    (AmbiguousRunIdError, 409),
    (RunStateError, 409),
    (InvalidRunInputError, 422),
    (ParameterValidationError, 422),
    (ConfigurationError, 422),
    (TargetNotFoundError, 422),
    (StoreUnavailableError, 503),
]


def status_for(error: LegatoError) -> int:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def install_error_handlers(app: FastAPI) -> None:
    from legato.server.ui.app import error_page, is_page

    async def legato_error(request: Request, exc: Exception) -> Response:
        error = exc if isinstance(exc, LegatoError) else LegatoError(str(exc))
        if is_page(request):
            return error_page(request, error)
        body: dict[str, object] = {"error": type(error).__name__, "detail": str(error)}
        problems = getattr(error, "problems", None)
        if problems:
            body["problems"] = list(problems)
        return JSONResponse(body, status_code=status_for(error))

    async def http_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and is_page(request) and exc.status_code != 401:
            return error_page(request, exc)
        return await http_exception_handler(request, exc)  # type: ignore[arg-type]

    app.add_exception_handler(LegatoError, legato_error)
    app.add_exception_handler(HTTPException, http_error)
