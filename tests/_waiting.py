"""Waiting on conditions in tests, never on guessed sleeps (importable from every test folder).

A test that lets something happen waits until it has happened; a test that
checks that something did *not* happen waits for a later event that proves it
would have happened by then (a later heartbeat, a later run taken by the same
worker, a line written after it), then checks the absence.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from legato.store.base import Store


def wait_until(
    condition: Callable[[], object],
    timeout: float = 30,
    interval: float = 0.01,
    what: str = "",
) -> None:
    """Return as soon as ``condition()`` is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what or condition}")


def wait_for_heartbeats(
    store: Store,
    run_id: str,
    *,
    count: int = 2,
    after: datetime | None = None,
    timeout: float = 30,
) -> None:
    """Wait until run ``run_id`` has been heartbeaten ``count`` times after ``after``
    (default: now, by the store's clock, which heartbeats are written with).

    The process running it renews the heartbeat once per monitor tick and, in
    the same tick, learns of a cancellation request: two heartbeats after a
    moment mean at least one whole tick began after it.
    """
    seen: list[datetime] = []
    since = after if after is not None else store.clock()

    def beaten() -> bool:
        run = store.get_flow_run(run_id)
        beat = run.heartbeat_at if run is not None else None
        if beat is not None and beat > since and (not seen or beat > seen[-1]):
            seen.append(beat)
        return len(seen) >= count

    wait_until(beaten, timeout=timeout, what=f"{count} heartbeats of run {run_id} after {since}")


def running_in(thread: threading.Thread, function: Callable[..., object]) -> bool:
    """Whether ``thread`` is inside ``function`` now (anywhere on its stack): the event
    to wait for before waking a thread that must be waiting already."""
    code = getattr(function, "__code__", None)
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def release_together(folder: Path, count: int, timeout: float = 60) -> None:
    """Let ``count`` processes go at once, when all are ready (their interpreters started).

    Each process creates a file ``ready-<pid>`` in ``folder`` and then waits for
    the file ``go`` there. ``go`` is created even if some never get ready, so
    that the others end and their output tells why.
    """
    try:
        wait_until(
            lambda: len(list(folder.glob("ready-*"))) >= count,
            timeout=timeout,
            interval=0.005,
            what=f"{count} processes to be ready in {folder}",
        )
    finally:
        (folder / "go").touch()
