"""Task runners: where submitted task calls execute."""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
from collections.abc import Callable
from typing import Any


class ThreadPoolTaskRunner:
    """Runs submitted task calls on a pool of threads (the default).

    ``max_workers`` defaults to the standard library's choice for I/O-bound work.
    A flow run gets its own copy of the runner, started on first submit.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            from legato.errors import ConfigurationError

            raise ConfigurationError(
                f"ThreadPoolTaskRunner(max_workers={max_workers}) needs at least 1 worker"
            )
        self.max_workers = max_workers
        self._pool: cf.ThreadPoolExecutor | None = None

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(max_workers=self.max_workers)

    def submit(self, fn: Callable[[], Any]) -> cf.Future[Any]:
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix="legato-task"
            )
        context = contextvars.copy_context()
        return self._pool.submit(context.run, fn)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"
