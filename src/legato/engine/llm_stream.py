"""Partial text of a streamed model call, written for the run page (best effort).

While `legato.ai.call(..., stream=True)` is in flight, the text so far is written
to the store's ``llm_streams`` row of the call (one row per call, replaced in
place, at most every `INTERVAL` seconds) so the server process can show it live;
the row is removed once the call ends. None of this is durable: a failed write
is said once in the run's logs and the call goes on without live text.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.engine.context import FlowRunContext

#: The least time between two writes of one call's partial text, in seconds.
INTERVAL = 0.1


class PartialText:
    """The text a streamed call has produced so far, mirrored to the store.

    A piece arriving sooner than `INTERVAL` after the last write is written by a
    timer once the interval has passed, so the row never lags the text for long.
    """

    __slots__ = (
        "_broken",
        "_closed",
        "_context",
        "_flow_ctx",
        "_io",
        "_last",
        "_lock",
        "_timer",
        "_written",
        "call_key",
        "text",
    )

    def __init__(self, flow_ctx: FlowRunContext, call_key: str) -> None:
        self._flow_ctx = flow_ctx
        self.call_key = call_key
        self.text = ""
        self._last = 0.0
        self._written = False
        self._broken = False
        self._closed = False
        self._timer: threading.Timer | None = None
        self._context: contextvars.Context | None = None
        self._lock = threading.Lock()  # the text and the timer
        self._io = threading.Lock()  # one store write at a time, none after close

    def add(self, piece: str) -> None:
        """Append a piece; write the text when `INTERVAL` passed since the last write,
        else have a timer write it when it has."""
        with self._lock:
            self.text += piece
            if self._broken:
                return
            wait = self._last + INTERVAL - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._context = contextvars.copy_context()
                    self._timer = threading.Timer(wait, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last = time.monotonic()
        self._write()

    def close(self) -> None:
        """The call ended (answered or failed): remove its row."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        with self._io:
            self._closed = True
            if not self._written or self._broken:
                return
            try:
                self._flow_ctx.store.end_llm_stream(self._flow_ctx.run.id, self.call_key)
            except Exception as exc:  # best effort: the call's outcome does not depend on it
                self._give_up(exc)

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
            context = self._context
        if context is not None:
            context.run(self._write)

    def _write(self) -> None:
        from legato._clock import now

        with self._io:
            if self._closed or self._broken:
                return
            with self._lock:
                text = self.text
            try:
                self._flow_ctx.store.write_llm_stream(
                    self._flow_ctx.run.id, self.call_key, text, now=now()
                )
                self._written = True
            except Exception as exc:  # best effort: the call's outcome does not depend on it
                self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        with self._lock:
            first = not self._broken
            self._broken = True
        if first:
            from legato.engine.logs import get_run_logger

            get_run_logger().warning(
                "model call %s: its streamed text could not be written for the run page "
                "(%s); the call goes on, and its answer is recorded as usual",
                self.call_key,
                exc,
            )
