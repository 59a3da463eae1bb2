"""Change notification: wake waiting processes when something they wait for happens.

A process that waits for work (a worker waiting for queued runs, a paused run's
resumer) listens on named channels instead of polling the tables. PostgreSQL
delivers notifications with LISTEN/NOTIFY the moment the notifying transaction
commits; SQLite, which has no such thing, keeps a version counter per channel
that listeners poll every ``LEGATO_POLL_SECONDS`` (default 0.1 s), which costs
one tiny read per interval. A notification is only a hint to look again: the
waiter always re-reads the store, so a coalesced or missed wake-up delays work
but never loses it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from legato.errors import ConfigurationError

if TYPE_CHECKING:
    from legato.records import Notification

#: notified (payload: the run's work queue) whenever a run is queued for workers
RUNS_QUEUED = "legato_runs_queued"
#: notified when slots of global limits are given back
LIMIT_SLOTS_FREED = "legato_limit_slots_freed"

DEFAULT_POLL_SECONDS = 0.1
# PostgreSQL's identifier limit is 63 bytes and NOTIFY payloads must stay
# under 8000 bytes; the same limits hold on SQLite so code moves freely.
_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MAX_PAYLOAD_BYTES = 7999


def check_channel(channel: str) -> str:
    """The channel name, or ConfigurationError saying what a valid one looks like."""
    if not isinstance(channel, str) or _CHANNEL.fullmatch(channel) is None:
        raise ConfigurationError(
            f"invalid notification channel {channel!r}: use 1 to 63 lowercase letters, "
            f"digits and underscores, starting with a letter or underscore"
        )
    return channel


def check_payload(payload: str) -> str:
    if len(payload.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
        raise ConfigurationError(
            f"notification payload of {len(payload)} characters is too long: keep it under "
            f"{MAX_PAYLOAD_BYTES} bytes and store larger data in a run or result instead"
        )
    return payload


def check_channels(channels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(channels, str):
        channels = (channels,)
    checked = tuple(dict.fromkeys(check_channel(channel) for channel in channels))
    if not checked:
        raise ConfigurationError("listen() needs at least one channel name")
    return checked


class ChangeListener(ABC):
    """Notifications on a set of channels, from `Store.listen`. Close it when done
    (or use it as a context manager); one listener belongs to one thread."""

    channels: tuple[str, ...]

    @abstractmethod
    def wait(self, timeout: float) -> list[Notification]:
        """Block until at least one notification arrives or ``timeout`` seconds pass.

        Returns the notifications received since the last call (empty on
        timeout), oldest first. Notifications sent before the listener was
        created are not seen. SQLite coalesces several notifications on one
        channel between two polls into the last one.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop listening and release the connection."""

    def __enter__(self) -> ChangeListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
