"""Parsing the alert options written as text: rate limits (``10/h``) and windows (``5m``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from legato.settings import parse_age

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(text: str) -> tuple[int, timedelta]:
    """``"10/h"`` → (10, one hour); also ``N/30m``. Raises ValueError saying what is wrong."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*", str(text))
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"rate limit {text!r} is not N/PERIOD with N >= 1 and PERIOD like s, m, h, d, "
            f"30m (e.g. 10/h)"
        )
    count = int(match.group(2) or "1")
    return int(match.group(1)), timedelta(seconds=count * _PERIODS[match.group(3)])


def parse_window(value: Any) -> timedelta:
    """A group window: seconds (a number) or an age like ``90s``, ``5m``, ``1h``; 0 = none."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    seconds = parse_age(str(value)) if isinstance(value, str) else None
    if seconds is None:
        raise ValueError(f"group_window {value!r} is not a duration like 30s, 5m or 1h")
    return timedelta(seconds=seconds)
