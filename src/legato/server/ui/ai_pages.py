"""Model calls in the UI: the run page's "Model calls" panel, the runs list's cost
column, the prompt pages (versions and a diff of two) and the comparison of a run
with its fork, call key by call key. Everything read from the store through the
client and rendered on the server; model text is only ever shown as escaped text."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from legato._llm_records import LLMCallRecord, PromptVersion
from legato.client import Client
from legato.client.llm_views import (
    CallView,
    Totals,
    format_cost,
    group_calls,
    request_messages,
    response_text,
    run_totals,
    task_totals,
    totals,
)
from legato.records import FlowRun
from legato.server.ui.pages import require_session
from legato.server.ui.render import client_of, render

#: Calls shown with their bodies on the run page; the rest are counted in the totals.
CALLS_SHOWN = 200
#: Characters of one request message or response shown (the API has all of it).
BODY_LIMIT = 20_000
#: The tag a fork carries, naming the run it was forked from.
FORKED_FROM = "forked-from:"

router = APIRouter(dependencies=[Depends(require_session)], include_in_schema=False)
ClientDep = Annotated[Client, Depends(client_of)]


def _cut(text: str) -> str:
    if len(text) <= BODY_LIMIT:
        return text
    return text[:BODY_LIMIT] + f"\n… ({len(text) - BODY_LIMIT:,} more characters)"


@dataclass(frozen=True)
class TryView:
    number: int
    outcome: str
    error: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost: str
    latency_seconds: float
    finish_reason: str | None
    copied_from: str | None
    messages: list[tuple[str, str]]
    response: str


def _try_view(record: LLMCallRecord) -> TryView:
    usage = record.usage
    return TryView(
        number=record.try_number,
        outcome=record.outcome.value,
        error=record.error,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost=format_cost(record.cost_usd),
        latency_seconds=record.latency_seconds,
        finish_reason=record.finish_reason,
        copied_from=record.copied_from,
        messages=[(role, _cut(text)) for role, text in request_messages(record)],
        response=_cut(response_text(record)),
    )


def _totals_view(total: Totals) -> dict[str, Any]:
    return {
        "calls": total.calls,
        "tries": total.tries,
        "input_tokens": total.usage.input_tokens,
        "output_tokens": total.usage.output_tokens,
        "cached_tokens": total.usage.cached_tokens,
        "reasoning_tokens": total.usage.reasoning_tokens,
        "cost": format_cost(total.cost_usd),
    }


def _call_view(view: CallView) -> dict[str, Any]:
    last = view.last
    return {
        "key": view.key,
        "provider": view.provider,
        "model": view.model,
        "outcome": view.outcome.value,
        "prompt_name": last.prompt_name,
        "prompt_version": last.prompt_version,
        "usage": view.usage,
        "cost": format_cost(view.cost_usd),
        "latency_seconds": view.latency_seconds,
        "tries": [_try_view(record) for record in view.tries],
    }


def forked_from(run: FlowRun) -> str | None:
    """The run a fork was made from, by its ``forked-from:<id>`` tag."""
    for tag in run.tags:
        if tag.startswith(FORKED_FROM) and len(tag) > len(FORKED_FROM):
            return tag[len(FORKED_FROM) :]
    return None


def llm_panel(client: Client, run: FlowRun) -> dict[str, Any] | None:
    """The run page's "Model calls" panel, or None when the run made no model call."""
    calls = group_calls(client.store.list_llm_calls(run.id))
    if not calls:
        return None
    return {
        "totals": _totals_view(totals(calls)),
        "tasks": [(task, _totals_view(total)) for task, total in task_totals(calls)],
        "calls": [_call_view(view) for view in calls[:CALLS_SHOWN]],
        "hidden": max(len(calls) - CALLS_SHOWN, 0),
    }


def run_costs(client: Client, runs: list[FlowRun]) -> dict[str, str] | None:
    """Cost by run id for the runs list (one query), or None when no run has calls."""
    found = run_totals(client.store, [run.id for run in runs])
    if not found:
        return None
    return {run_id: format_cost(total.cost_usd) for run_id, total in found.items()}


@router.get("/prompts", response_class=HTMLResponse, name="ui_prompts")
def prompts(request: Request, client: ClientDep) -> Response:
    return render(
        request, "prompts.html", {"prompts": client.store.list_prompts()}, section="ui_prompts"
    )


@router.get("/prompts/{name}", response_class=HTMLResponse, name="ui_prompt")
def prompt_page(
    request: Request, name: str, client: ClientDep, a: str = "", b: str = ""
) -> Response:
    versions = client.store.list_prompt_versions(name)
    if not versions:
        raise HTTPException(
            404, f"no prompt named {name!r} is stored; the stored prompts are listed at /prompts"
        )
    diff: list[tuple[str, str]] | None = None
    pair: tuple[str, str] | None = None
    if a or b:
        older = _version(client, name, a)
        newer = _version(client, name, b)
        pair = (older.version, newer.version)
        lines = difflib.unified_diff(
            older.template.splitlines(),
            newer.template.splitlines(),
            fromfile=f"{name}@{older.version}",
            tofile=f"{name}@{newer.version}",
            lineterm="",
        )
        diff = [(_diff_kind(line), line) for line in lines]
    return render(
        request,
        "prompt.html",
        {"name": name, "versions": versions, "diff": diff, "pair": pair},
        section="ui_prompts",
    )


def _version(client: Client, name: str, given: str) -> PromptVersion:
    """The version ``given`` names (a unique prefix will do; empty: the newest)."""
    found = client.store.get_prompt(name, given or None)
    if found is None:
        raise HTTPException(
            404,
            f"prompt {name!r} has no version {given!r}; pick one of the versions listed "
            f"at /prompts/{name}",
        )
    return found


def _diff_kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "head"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "same")


@router.get("/runs/{a}/compare/{b}", response_class=HTMLResponse, name="ui_compare")
def compare(request: Request, a: str, b: str, client: ClientDep) -> Response:
    left, right = client.resolve_run(a), client.resolve_run(b)
    left_calls = {view.key: view for view in group_calls(client.store.list_llm_calls(left.id))}
    right_calls = {view.key: view for view in group_calls(client.store.list_llm_calls(right.id))}
    keys = list(left_calls) + [key for key in right_calls if key not in left_calls]
    rows = []
    for key in keys[:CALLS_SHOWN]:
        sides = [left_calls.get(key), right_calls.get(key)]
        views = [None if view is None else _compare_side(view) for view in sides]
        same = (
            views[0] is not None
            and views[1] is not None
            and all(views[0][k] == views[1][k] for k in ("output", "model", "prompt_version"))
        )
        rows.append({"key": key, "left": views[0], "right": views[1], "same": same})
    return render(
        request,
        "compare.html",
        {
            "left": left,
            "right": right,
            "rows": rows,
            "hidden": max(len(keys) - CALLS_SHOWN, 0),
            "left_totals": _totals_view(totals(list(left_calls.values()))),
            "right_totals": _totals_view(totals(list(right_calls.values()))),
        },
        section="ui_runs",
    )


def _compare_side(view: CallView) -> dict[str, Any]:
    last = view.last
    usage = view.usage
    return {
        "output": _cut(response_text(last)),
        "model": view.model,
        "prompt_name": last.prompt_name,
        "prompt_version": last.prompt_version,
        "tries": len(view.tries),
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost": format_cost(view.cost_usd),
        "copied": view.copied,
    }
