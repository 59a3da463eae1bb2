"""Bounds on the numbers a person or program gives legato, checked before anything
is stored, so a value that fits no column (or no calendar) is a clear
`ConfigurationError` naming the field instead of a raw ``OverflowError`` later.

PostgreSQL stores priorities, concurrency limits and limit slots as 32-bit
``integer`` columns, so those are bounded to the signed 32-bit range
everywhere (SQLite too: a deployment must move between backends). Counts
given to a query (how many runs to list, log ids) fit a signed 64-bit integer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legato.errors import ConfigurationError

if TYPE_CHECKING:
    from legato.records import Deployment

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# The window of a rate limit: more than 0, at most 10 years (longer overflows dates).
MAX_PER_SECONDS = 10 * 365 * 86400.0


def shown(value: Any) -> str:
    """``repr(value)`` short enough for a one-line error, even for a huge int
    (whose decimal text Python refuses to build past 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit number"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(value: Any, what: str, *, low: int, high: int) -> int:
    """``value`` when it is a whole number (not a bool) in [low, high]; else a
    ConfigurationError naming ``what`` and the accepted range."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"{what} must be a whole number from {low:,} to {high:,}, got {shown(value)}"
        )
    return value


def check_seconds(value: Any, what: str, *, high: float) -> float:
    """``value`` when it is a finite number of seconds in (0, high]; else a
    ConfigurationError naming ``what``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= high  # NaN fails here too
    ):
        raise ConfigurationError(
            f"{what} must be a number of seconds more than 0 and at most {high:,g}, "
            f"got {shown(value)}"
        )
    return float(value)


def check_text(value: Any, what: str) -> None:
    """A ConfigurationError when ``value`` (text, or a list of texts) is not Unicode
    text a store can hold (a lone surrogate such as ``"\\ud800"``)."""
    from legato.engine.params import storable_problem

    problem = storable_problem(value)
    if problem is not None:
        raise ConfigurationError(f"{what} {problem}")


def check_deployment_values(
    name: str,
    *,
    priority: Any,
    concurrency_limit: Any,
    schedules: Any = (),
    texts: dict[str, Any] | None = None,
) -> None:
    """Check what a deployment stores besides its flow and parameters: its priority,
    its concurrency limit, each of its schedules, and ``texts`` (what each is
    called in an error -> the text or list of texts)."""
    from legato.records import Schedule
    from legato.schedules import check_schedule

    for what, text in (texts or {}).items():
        check_text(text, f"{what} of deployment '{name}'")
    check_int(priority, f"the priority of deployment '{name}'", low=INT32_MIN, high=INT32_MAX)
    if concurrency_limit is not None:
        check_int(
            concurrency_limit,
            f"the concurrency limit of deployment '{name}' (leave it out for no limit)",
            low=1,
            high=INT32_MAX,
        )
    for schedule in schedules:
        if not isinstance(schedule, Schedule):
            raise ConfigurationError(
                f"a schedule of deployment '{name}' is a {type(schedule).__name__}, not a "
                f"Schedule; build it with legato.schedules.make_schedule"
            )
        check_schedule(schedule)


def deployment_problem(deployment: Deployment) -> str | None:
    """What is wrong with a stored deployment (one written before these checks, or
    by hand), or None. Listings show it instead of failing; the scheduler skips it."""
    try:
        check_deployment_values(
            deployment.name,
            priority=deployment.priority,
            concurrency_limit=deployment.concurrency_limit,
            schedules=deployment.schedules,
        )
    except ConfigurationError as exc:
        return str(exc)
    return None
