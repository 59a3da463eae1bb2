"""legato's errors as HTTP answers: what was wrong, with the same messages as the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse

from legato.errors import (
    AmbiguousRunIdError,
    ConfigurationError,
    DeploymentNotFoundError,
    InvalidRunInputError,
    LegatoError,
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
    async def legato_error(request: Request, exc: Exception) -> JSONResponse:
        error = exc if isinstance(exc, LegatoError) else LegatoError(str(exc))
        body: dict[str, object] = {"error": type(error).__name__, "detail": str(error)}
        problems = getattr(error, "problems", None)
        if problems:
            body["problems"] = list(problems)
        return JSONResponse(body, status_code=status_for(error))

    app.add_exception_handler(LegatoError, legato_error)
