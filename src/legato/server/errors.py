"""legato's errors as HTTP answers: what was wrong, with the same messages as the CLI.

API paths answer JSON in one shape, `ErrorBody`, whatever the error: legato's
own (a `LegatoError`), a request that does not fit the documented schema
(FastAPI's validation, 422, each problem naming its field), or an HTTP error
(401, 403, 404, 405). UI pages answer an error page with the same message.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from legato.errors import (
    AmbiguousRunIdError,
    AutomationNotFoundError,
    ConfigurationError,
    DeploymentNotFoundError,
    InvalidRunInputError,
    LegatoError,
    LimitNotFoundError,
    ParameterValidationError,
    PromptNotFoundError,
    PromptVersionAmbiguousError,
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
    (AutomationNotFoundError, 404),
    (PromptNotFoundError, 404),
    (AmbiguousRunIdError, 409),
    (PromptVersionAmbiguousError, 409),
    (RunStateError, 409),
    (InvalidRunInputError, 422),
    (ParameterValidationError, 422),
    (ConfigurationError, 422),
    (TargetNotFoundError, 422),
    (StoreUnavailableError, 503),
]


class ErrorBody(BaseModel):
    """Every error the API answers, in one shape."""

    error: str = Field(
        description="The kind of error: a legato error's name (RunNotFoundError, "
        "ParameterValidationError...), RequestValidationError, or the HTTP status's name."
    )
    detail: str = Field(description="What happened and what to do, in one message.")
    problems: list[str] = Field(
        default_factory=list,
        description="Each problem on its own, naming its field (validation errors).",
    )


_DESCRIPTIONS = {
    400: "The request cannot be read.",
    401: "A token is configured and the request has none, or a wrong one.",
    403: "A write from a page of another site.",
    404: "No such run, task run, deployment or limit.",
    409: "The run is not in a state that allows this, or an id prefix matches several.",
    422: "The request does not fit: each problem names its field.",
    503: "The store is unavailable (PostgreSQL down past the retry window).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` documenting ``statuses`` with the error body."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }


def status_for(error: LegatoError) -> int:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def error_json(
    status: int, error: str, detail: str, problems: list[str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=error, detail=detail, problems=problems or [])
    return JSONResponse(body.model_dump(), status_code=status)


def validation_problems(exc: RequestValidationError) -> list[str]:
    """One line per problem: where (``body.slots``, ``query.after``) and what."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ())) or "request"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return problems


def install_error_handlers(app: FastAPI) -> None:
    from legato.server.ui.app import error_page, is_page

    async def legato_error(request: Request, exc: Exception) -> Response:
        error = exc if isinstance(exc, LegatoError) else LegatoError(str(exc))
        if is_page(request):
            return error_page(request, error)
        problems = getattr(error, "problems", None)
        return error_json(
            status_for(error),
            type(error).__name__,
            str(error),
            [str(p) for p in problems] if problems else None,
        )

    async def request_invalid(request: Request, exc: Exception) -> Response:
        problems = validation_problems(exc) if isinstance(exc, RequestValidationError) else []
        detail = "invalid request: " + "; ".join(problems[:5])
        if len(problems) > 5:
            detail += f" (and {len(problems) - 5} more)"
        if is_page(request):
            return error_page(request, HTTPException(status_code=422, detail=detail))
        return error_json(422, "RequestValidationError", detail, problems)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):
            return error_json(500, "InternalServerError", str(exc))
        if is_page(request) and exc.status_code != 401:
            return error_page(request, exc)
        try:
            name = HTTPStatus(exc.status_code).phrase.replace(" ", "").replace("-", "")
        except ValueError:
            name = "HTTPError"
        response = error_json(exc.status_code, name, str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    app.add_exception_handler(LegatoError, legato_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(HTTPException, http_error)
