"""Watching a run from the CLI: observers the engine calls while the run executes.

`RunTracker` keeps thread-safe counts (the engine calls observers from its
worker threads); `LiveProgress` draws them with rich in a terminal;
`PlainProgress` writes a start line for pipes. Log lines are not printed
here: the engine echoes them to the current ``sys.stderr`` itself (unless
``LEGATO_LOG_TO_CONSOLE=0``), which rich's live display redirects above
its progress line.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from legato.cli.render import format_elapsed
from legato.client.views import shorten
from legato.engine.observer import NullObserver
from legato.records import FlowRun, TaskRun
from legato.states import State, StateType

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

# How many running task names fit on the progress line before "+N more".
_SHOWN_RUNNING = 3


@dataclass(frozen=True)
class Snapshot:
    flow_name: str | None
    run_id: str | None
    done: int
    total: int
    failed: int
    running: list[str]
    elapsed: float


class RunTracker(NullObserver):
    """Counts task runs seen so far and remembers which are running now."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._started = clock()
        self.root: FlowRun | None = None
        self._running: dict[str, str] = {}  # task run id -> display name, in start order
        self._finished: set[str] = set()
        self._failed = 0

    def flow_started(self, run: FlowRun) -> None:
        with self._lock:
            # The first run to start is the one the command ran; later ones are subflows.
            if self.root is None:
                self.root = run

    def task_started(self, task_run: TaskRun) -> None:
        with self._lock:
            if task_run.id not in self._finished:
                self._running[task_run.id] = task_run.name

    def task_finished(self, task_run: TaskRun) -> None:
        with self._lock:
            self._running.pop(task_run.id, None)
            # A retried task may finish more than once in the engine's eyes; count it once.
            if task_run.id not in self._finished:
                self._finished.add(task_run.id)
                if task_run.state in (StateType.FAILED, StateType.CRASHED):
                    self._failed += 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            root = self.root
            return Snapshot(
                flow_name=root.flow_name if root else None,
                run_id=root.id if root else None,
                done=len(self._finished),
                total=len(self._finished) + len(self._running),
                failed=self._failed,
                running=list(self._running.values()),
                elapsed=self._clock() - self._started,
            )


def progress_text(snap: Snapshot, *, waiting: str = "starting") -> str:
    """``etl 3f2a9c1e · 3/5 tasks · running: load, save (+2) · 0:07``; ``waiting``
    stands first until the run has started."""
    head = snap.flow_name or waiting
    if snap.run_id:
        head += f" {snap.run_id[:8]}"
    parts = [head, f"{snap.done}/{snap.total} tasks"]
    if snap.failed:
        parts.append(f"{snap.failed} failed")
    if snap.running:
        shown = ", ".join(shorten(name, 40) for name in snap.running[:_SHOWN_RUNNING])
        more = len(snap.running) - _SHOWN_RUNNING
        parts.append(f"running: {shown}" + (f" (+{more})" if more > 0 else ""))
    parts.append(format_elapsed(snap.elapsed))
    return " · ".join(parts)


class PlainProgress(RunTracker):
    """For pipes and ``--json``: one start line (``run ID started``, or ``resumed``
    for a resume), unless told to be quiet."""

    def __init__(self, *, announce: bool, resumed: bool = False) -> None:
        super().__init__()
        self._announce = announce
        self._verb = "resumed" if resumed else "started"

    def flow_started(self, run: FlowRun) -> None:
        first = self.root is None
        super().flow_started(run)
        if first and self._announce:
            click.echo(f"run {run.id} {self._verb} (flow {run.flow_name})")


class LiveProgress(RunTracker):
    """A live line in the terminal; whatever the run prints scrolls above it."""

    def __init__(self, console: Console, *, resumed: bool = False) -> None:
        super().__init__()
        self.console = console
        self._live: Live | None = None
        self._waiting = "resuming" if resumed else "starting"

    def _render(self) -> RenderableType:
        from rich.spinner import Spinner
        from rich.text import Text

        text = progress_text(self.snapshot(), waiting=self._waiting)
        return Spinner("dots", text=Text(text), style="cyan")

    def __enter__(self) -> LiveProgress:
        from rich.live import Live

        # transient: the progress line disappears and the summary takes its place.
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def flow_finished(self, run: FlowRun, state: State) -> None:
        if self._live is not None:
            self._live.refresh()
