"""A run's task graph, laid out for SVG: nodes coloured by state, edges from
recorded dependencies, and big maps folded into one node each.

Pure functions over task runs; the template draws what `build_graph` returns.
Layout is by layers (longest path from a source), which is what a pipeline
reads like left to right, and costs O(nodes + edges): a run of 10,000 tasks in
one map is one node here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from legato.records import TaskRun
from legato.states import StateType

# A group of calls of one task with at least this many members is drawn as one node.
FOLD_AT = 25
NODE_WIDTH = 190
NODE_HEIGHT = 40
LAYER_GAP = 70
ROW_GAP = 14
MARGIN = 10

# Which state a folded node shows: the one a person should look at first.
_STATE_PRIORITY = [
    StateType.FAILED,
    StateType.CRASHED,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CANCELLED,
    StateType.PENDING,
    StateType.SCHEDULED,
    StateType.COMPLETED,
]

# A call's ordinal, or a concurrent branch's arguments (``branch[3]#1``).
_INDEX = re.compile(r"\[[^\]/]*\](?:#\d+)?(?=/)|\[\d+\]")


def group_key(call_key: str) -> str:
    """``double`` for ``double[17]``, ``outer/inner`` for ``outer[2]/inner[5]``, and
    ``branch/fetch`` for ``branch['a', 2]/fetch[0]`` (asyncio branches)."""
    return _INDEX.sub("", call_key)


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: str  # the task run id, or ``group:<key>`` for a folded group
    label: str
    state: str
    x: int
    y: int
    task_run_id: str | None = None
    group: str | None = None
    counts: tuple[tuple[str, int], ...] = ()  # state -> members, for a group

    @property
    def size(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: GraphNode
    target: GraphNode
    kind: str  # "data" or "wait_for"
    count: int = 1  # dependencies folded into this edge

    @property
    def path(self) -> str:
        """An SVG path from the source's right side to the target's left side."""
        x1 = self.source.x + NODE_WIDTH
        y1 = self.source.y + NODE_HEIGHT // 2
        x2 = self.target.x
        y2 = self.target.y + NODE_HEIGHT // 2
        bend = max((x2 - x1) // 2, 20)
        return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    width: int
    height: int
    groups: dict[str, list[TaskRun]] = field(default_factory=dict)  # folded members


def group_state(counts: Counter[StateType]) -> StateType:
    for state in _STATE_PRIORITY:
        if counts.get(state):
            return state
    return next(iter(counts)) if counts else StateType.PENDING


def _layers(order: list[str], upstream: dict[str, set[str]]) -> dict[str, int]:
    """Longest path from a source, in the order task runs started.

    A task run starts after its inputs resolve, so upstream nodes come first;
    an edge that points forward in that order (never expected) is ignored
    rather than allowed to loop.
    """
    seen: dict[str, int] = {}
    for node in order:
        layer = 0
        for up in upstream.get(node, ()):
            if up in seen:
                layer = max(layer, seen[up] + 1)
        seen[node] = layer
    return seen


def build_graph(task_runs: Sequence[TaskRun], *, fold_at: int = FOLD_AT) -> Graph:
    """Nodes and edges for ``task_runs`` (in the store's order: by start), big
    groups folded."""
    members: dict[str, list[TaskRun]] = {}
    for run in task_runs:
        members.setdefault(group_key(run.call_key), []).append(run)
    folded = {key for key, runs in members.items() if len(runs) >= fold_at}

    node_of: dict[str, str] = {}  # task run id -> node id
    order: list[str] = []
    for run in task_runs:
        key = group_key(run.call_key)
        node_id = f"group:{key}" if key in folded else run.id
        node_of[run.id] = node_id
        order.append(node_id)
    order = list(dict.fromkeys(order))  # first appearance, once each

    upstream: dict[str, set[str]] = {}
    edge_kinds: Counter[tuple[str, str, str]] = Counter()
    for run in task_runs:
        target = node_of[run.id]
        for dep in run.dependencies:
            source = node_of.get(dep.upstream_id)
            if source is None or source == target:
                continue
            upstream.setdefault(target, set()).add(source)
            edge_kinds[(source, target, dep.kind)] += 1
    layer_of = _layers(order, upstream)

    rows: Counter[int] = Counter()
    placed: dict[str, GraphNode] = {}
    first_run = {node_of[run.id]: run for run in reversed(task_runs)}
    for node_id in order:
        layer = layer_of[node_id]
        x = MARGIN + layer * (NODE_WIDTH + LAYER_GAP)
        y = MARGIN + rows[layer] * (NODE_HEIGHT + ROW_GAP)
        rows[layer] += 1
        if node_id.startswith("group:"):
            key = node_id[len("group:") :]
            counts = Counter(r.state for r in members[key])
            placed[node_id] = GraphNode(
                id=node_id,
                label=f"{key} \u00d7{len(members[key]):,}",
                state=group_state(counts).value,
                x=x,
                y=y,
                group=key,
                counts=tuple((s.value, counts[s]) for s in _STATE_PRIORITY[::-1] if counts.get(s)),
            )
        else:
            run = first_run[node_id]
            placed[node_id] = GraphNode(
                id=node_id, label=run.call_key, state=run.state.value, x=x, y=y, task_run_id=run.id
            )
    edges = [
        GraphEdge(placed[source], placed[target], kind, count)
        for (source, target, kind), count in edge_kinds.items()
    ]
    layers = max(layer_of.values(), default=-1) + 1
    tallest = max(rows.values(), default=0)
    return Graph(
        nodes=list(placed.values()),
        edges=edges,
        width=2 * MARGIN + max(layers * (NODE_WIDTH + LAYER_GAP) - LAYER_GAP, 0),
        height=2 * MARGIN + max(tallest * (NODE_HEIGHT + ROW_GAP) - ROW_GAP, 0),
        groups={key: members[key] for key in folded},
    )
