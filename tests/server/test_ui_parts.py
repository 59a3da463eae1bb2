"""The UI's pure parts: graph folding and layout, the timeline, generated forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legato.records import Dependency, TaskRun
from legato.server.ui.forms import form_fields, parse_form, submitted_values
from legato.server.ui.graph import NODE_WIDTH, build_graph, group_key
from legato.server.ui.timeline import LABEL_WIDTH, WIDTH, build_timeline
from legato.states import StateType

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def task(
    key: str,
    state: StateType = StateType.COMPLETED,
    deps: tuple[str, ...] = (),
    start: float | None = 0.0,
    end: float | None = 1.0,
    attempts: int = 1,
) -> TaskRun:
    return TaskRun(
        id=f"id-{key}",
        flow_run_id="run",
        call_key=key,
        task_name=group_key(key).rsplit("/", 1)[-1],
        name=key,
        state=state,
        attempts=attempts,
        start_time=None if start is None else T0 + timedelta(seconds=start),
        end_time=None if end is None else T0 + timedelta(seconds=end),
        dependencies=tuple(Dependency(f"id-{d}", "data", "x") for d in deps),
    )


def test_group_keys_drop_every_call_index() -> None:
    assert group_key("double[17]") == "double"
    assert group_key("outer[2]/inner[5]") == "outer/inner"
    # asyncio branches are named by their arguments; they fold like indexes
    assert group_key("branch['a', 2]/fetch[0]") == "branch/fetch"
    assert group_key("branch[1]#1/fetch[0]") == "branch/fetch"


def test_a_big_map_folds_into_one_node_with_counts_and_one_edge_each_way() -> None:
    mapped = [task(f"double[{i}]", deps=("load[0]",)) for i in range(30)]
    mapped[3] = task("double[3]", StateType.FAILED, deps=("load[0]",))
    reduce = task("total[0]", deps=tuple(f"double[{i}]" for i in range(30)))
    runs = [task("load[0]"), *mapped, reduce]
    graph = build_graph(runs, fold_at=25)
    assert [n.label for n in graph.nodes] == ["load[0]", "double \u00d730", "total[0]"]
    folded = graph.nodes[1]
    assert folded.group == "double" and folded.state == "failed"  # the worst state shows
    assert dict(folded.counts) == {"completed": 29, "failed": 1} and folded.size == 30
    assert [(e.source.label, e.target.label, e.count) for e in graph.edges] == [
        ("load[0]", "double \u00d730", 30),
        ("double \u00d730", "total[0]", 30),
    ]
    assert [n.x for n in graph.nodes] == sorted(n.x for n in graph.nodes)  # layers left to right
    assert len(graph.groups["double"]) == 30


def test_small_groups_stay_unfolded_and_parallel_branches_share_a_layer() -> None:
    runs = [task("a[0]"), task("b[0]", deps=("a[0]",)), task("c[0]", deps=("a[0]",))]
    runs.append(task("d[0]", deps=("b[0]", "c[0]")))
    graph = build_graph(runs, fold_at=25)
    x = {n.label: n.x for n in graph.nodes}
    assert x["b[0]"] == x["c[0]"] > x["a[0]"] and x["d[0]"] > x["b[0]"]
    y = {n.label: n.y for n in graph.nodes}
    assert y["b[0]"] != y["c[0]"]
    assert graph.width >= x["d[0]"] + NODE_WIDTH and graph.groups == {}
    assert all(e.path.startswith("M") for e in graph.edges)


def test_timeline_scales_bars_to_the_run_span_and_marks_attempts() -> None:
    runs = [task("a[0]", start=0, end=2), task("b[0]", start=2, end=4, attempts=3)]
    graph = build_graph(runs)
    timeline = build_timeline(graph, runs, now=T0 + timedelta(seconds=10))
    first, second = timeline.rows
    assert timeline.seconds == 4.0
    assert first.bars[0].x == LABEL_WIDTH and round(first.bars[0].width) == WIDTH // 2
    assert round(second.bars[0].x) == LABEL_WIDTH + WIDTH // 2
    assert second.attempts == 3 and "3 attempts" in second.bars[0].title
    assert first.href == "?task=id-a[0]"


def test_a_running_task_reaches_now_and_an_unstarted_one_has_no_bar() -> None:
    runs = [task("a[0]", StateType.RUNNING, start=0, end=None), task("b[0]", start=None, end=None)]
    timeline = build_timeline(build_graph(runs), runs, now=T0 + timedelta(seconds=5))
    assert timeline.seconds == 5.0
    assert timeline.rows[0].bars[0].width == WIDTH and timeline.rows[1].bars == []


SCHEMA = {
    "properties": {
        "approved": {"type": "boolean", "title": "Approved"},
        "count": {"type": "integer", "default": 3},
        "ratio": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None},
        "note": {"type": "string", "default": ""},
        "mode": {"enum": ["fast", "safe"], "type": "string"},
        "items": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["approved", "mode"],
}


def test_fields_follow_the_schema_with_defaults_and_required_marks() -> None:
    fields = {f.name: f for f in form_fields(SCHEMA)}
    assert fields["approved"].kind == "boolean" and fields["approved"].required
    assert fields["count"].kind == "integer" and fields["count"].value == "3"
    assert fields["ratio"].kind == "number" and fields["ratio"].value == ""
    assert fields["mode"].choices == ("fast", "safe")
    assert fields["items"].kind == "json" and not fields["items"].required
    shown = form_fields(SCHEMA, submitted={"count": "many"})
    assert next(f for f in shown if f.name == "count").value == "many"


def test_submitted_strings_become_json_values_and_bad_ones_stay_strings() -> None:
    raw = submitted_values(
        {
            "csrf_token": "x",
            "field.approved": "true",
            "field.count": "7",
            "field.ratio": "",
            "field.note": "",
            "field.mode": "safe",
            "field.items": "[1, 2]",
        }
    )
    assert "csrf_token" not in raw
    expected = {"approved": True, "count": 7, "mode": "safe", "items": [1, 2]}
    assert parse_form(SCHEMA, raw) == expected
    assert parse_form(SCHEMA, {"count": "seven", "approved": "maybe"}) == {
        "count": "seven",
        "approved": "maybe",
    }


def test_a_task_run_with_an_attempt_history_gets_one_bar_per_attempt() -> None:
    from dataclasses import replace

    from legato.records import AttemptInfo, ErrorInfo

    history = (
        AttemptInfo(1, T0, T0 + timedelta(seconds=1), "failed", ErrorInfo("IOError", "flaky")),
        AttemptInfo(2, T0 + timedelta(seconds=3), T0 + timedelta(seconds=4), "completed"),
    )
    retried = replace(task("load[0]", start=3, end=4, attempts=2), attempt_log=history)
    runs = [retried]
    timeline = build_timeline(build_graph(runs), runs, now=T0 + timedelta(seconds=9))
    (row,) = timeline.rows
    assert timeline.seconds == 4.0  # from the first attempt, before the task run's start
    assert [b.state for b in row.bars] == ["failed", "completed"]
    assert row.bars[0].x == LABEL_WIDTH and round(row.bars[1].x) == LABEL_WIDTH + 3 * WIDTH // 4
    assert "attempt 1: failed" in row.bars[0].title and "IOError: flaky" in row.bars[0].title
