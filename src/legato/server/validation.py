"""Strict, bounded types for what the API reads: a request that does not fit is a
422 naming the field, before anything reaches the client or the store.

No bool is read as a number, no number as a time; every number has a sensible
range (a count or priority far from what a 64-bit column or a schedule can hold).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

MAX_COUNT = 1_000_000  # slots, concurrency limits
MAX_PRIORITY = 1_000_000
TEN_YEARS = 10 * 366 * 24 * 3600  # seconds: the longest interval or rate window
MAX_LOG_ID = 2**53  # log ids are 64-bit rowids; anything larger is no id at all
_EARLIEST_YEAR, _LATEST_YEAR = 1900, 2999
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _time_text(value: Any) -> Any:
    """Only ISO 8601 text is a time: not a number, nor a number in a string."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _NUMBER.fullmatch(value):
        raise ValueError(
            "give a time as an ISO 8601 string such as 2026-01-01T00:00:00Z, not a number"
        )
    return value


def _in_range(value: datetime) -> datetime:
    if not _EARLIEST_YEAR <= value.year <= _LATEST_YEAR:
        raise ValueError(f"give a time between the years {_EARLIEST_YEAR} and {_LATEST_YEAR}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    """JSON any store can hold: valid Unicode (no lone surrogate such as \\ud800),
    no NaN or infinity."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "text must be valid Unicode: a lone surrogate such as \\ud800 cannot be stored"
        ) from None
    except ValueError:
        raise ValueError("numbers must be finite: NaN and Infinity are not JSON") from None
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
"""A JSON object from a request, storable as it is."""

IsoTime = Annotated[datetime, BeforeValidator(_time_text), AfterValidator(_in_range)]
"""A time as ISO 8601 text (UTC when it has no offset), years 1900 to 2999."""

Priority = Annotated[int, Field(strict=True, ge=-MAX_PRIORITY, le=MAX_PRIORITY)]
Slots = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
Concurrency = Annotated[int, Field(strict=True, ge=1, le=MAX_COUNT)]
Seconds = Annotated[float, Field(strict=True, ge=1, le=TEN_YEARS, allow_inf_nan=False)]
RateWindow = Annotated[float, Field(strict=True, gt=0, le=TEN_YEARS, allow_inf_nan=False)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
Text = Annotated[str, Field(strict=True, max_length=10_000)]
