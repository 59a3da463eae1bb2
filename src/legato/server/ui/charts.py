"""The dashboard's stacked bar chart of runs over time, laid out for SVG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from legato.states import StateType

WIDTH = 960
HEIGHT = 160
# Bottom to top: what finished well first, what needs a look on top.
STACK = [
    StateType.COMPLETED,
    StateType.CANCELLED,
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CRASHED,
    StateType.FAILED,
]


@dataclass(frozen=True, slots=True)
class ChartBar:
    x: float
    y: float
    width: float
    height: float
    state: str
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[ChartBar]
    ticks: list[Tick]
    states: list[str]
    width: int
    height: int


def runs_chart(stats: dict[str, Any]) -> Chart:
    """One stacked bar per time slice of ``stats["series"]`` (see `dashboard_data`)."""
    series = stats["series"]
    slots = max(len(series), 1)
    slot_width = WIDTH / slots
    tallest = max((sum(s["counts"].values()) for s in series), default=0) or 1
    bars: list[ChartBar] = []
    ticks: list[Tick] = []
    for i, bucket in enumerate(series):
        x = i * slot_width + 1
        top = float(HEIGHT)
        start = datetime.fromisoformat(bucket["start"])
        for state in STACK:
            count = bucket["counts"].get(state.value, 0)
            if not count:
                continue
            height = count / tallest * (HEIGHT - 4)
            top -= height
            label = start.strftime("%m-%d %H:%M")
            bars.append(
                ChartBar(
                    x, top, slot_width - 2, height, state.value, f"{label}: {count} {state.value}"
                )
            )
        if i % max(slots // 6, 1) == 0:
            ticks.append(Tick(x, start.strftime("%m-%d %H:%M")))
    present = {state for s in series for state in s["counts"]}
    return Chart(
        bars=bars,
        ticks=ticks,
        states=[s.value for s in STACK if s.value in present],
        width=WIDTH,
        height=HEIGHT,
    )
