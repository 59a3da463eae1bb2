"""Model calls, tokens and costs as `legato show`, `legato runs`, `legato ai costs` and the
web UI present them: tries grouped by call key, per-task and per-run totals, and the
JSON shape of a run's `llm` totals. Reads the store's records; imports no provider."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from legato._llm_records import LLMCallRecord, LLMGroup, LLMOutcome, LLMUsage, LLMUsageTotal

if TYPE_CHECKING:
    from legato.store.base import Store


@dataclass(slots=True)
class CallView:
    """One model call (a call key) with all its recorded tries, in try order."""

    key: str
    tries: list[LLMCallRecord] = field(default_factory=list)

    @property
    def last(self) -> LLMCallRecord:
        return self.tries[-1]

    @property
    def model(self) -> str:
        return self.last.model

    @property
    def provider(self) -> str:
        return self.last.provider

    @property
    def outcome(self) -> LLMOutcome:
        return self.last.outcome

    @property
    def prompt(self) -> str | None:
        """``name@version`` of the prompt the last try used, or None."""
        last = self.last
        if last.prompt_name is None:
            return None
        return f"{last.prompt_name}@{last.prompt_version or '?'}"

    @property
    def usage(self) -> LLMUsage:
        total = LLMUsage()
        for one in self.tries:
            total = total + one.usage
        return total

    @property
    def cost_usd(self) -> float | None:
        """The sum of the tries' costs; None when no try had a price."""
        costs = [one.cost_usd for one in self.tries if one.cost_usd is not None]
        return sum(costs) if costs else None

    @property
    def latency_seconds(self) -> float:
        return sum(one.latency_seconds for one in self.tries)

    @property
    def copied(self) -> bool:
        return all(one.copied_from is not None for one in self.tries)


@dataclass(frozen=True, slots=True)
class Totals:
    """Calls (keys), tries, tokens and cost summed over some calls."""

    calls: int
    tries: int
    usage: LLMUsage
    cost_usd: float


def group_calls(records: Iterable[LLMCallRecord]) -> list[CallView]:
    """The tries grouped by call key, calls in the order their first try started."""
    calls: dict[str, CallView] = {}
    for record in records:
        calls.setdefault(record.call_key, CallView(record.call_key)).tries.append(record)
    for view in calls.values():
        view.tries.sort(key=lambda r: r.try_number)
    return list(calls.values())


def totals(calls: Sequence[CallView]) -> Totals:
    usage = LLMUsage()
    for view in calls:
        usage = usage + view.usage
    return Totals(
        calls=len(calls),
        tries=sum(len(view.tries) for view in calls),
        usage=usage,
        cost_usd=sum(view.cost_usd or 0.0 for view in calls),
    )


def task_of(call_key: str) -> str | None:
    """The task run a nested call belongs to (``task[0]/llm[0]`` -> ``task[0]``)."""
    return call_key.rsplit("/", 1)[0] if "/" in call_key else None


def task_totals(calls: Sequence[CallView]) -> list[tuple[str, Totals]]:
    """Totals of the calls nested in each task, tasks in the order of their first call."""
    by_task: dict[str, list[CallView]] = {}
    for view in calls:
        task = task_of(view.key)
        if task is not None:
            by_task.setdefault(task, []).append(view)
    return [(task, totals(members)) for task, members in by_task.items()]


def usage_dict(calls: int, usage: LLMUsage, cost_usd: float) -> dict[str, Any]:
    """The `llm` object of `legato runs --json` and `legato show --json`."""
    return {
        "calls": calls,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cost_usd": round(cost_usd, 10),
    }


def total_dict(total: LLMUsageTotal | None) -> dict[str, Any]:
    if total is None:
        return usage_dict(0, LLMUsage(), 0.0)
    return usage_dict(total.calls, total.usage, total.cost_usd)


def run_totals(store: Store, run_ids: Sequence[str]) -> dict[str, LLMUsageTotal]:
    """Model-call totals of the given runs (one query); runs without calls are absent."""
    if not run_ids:
        return {}
    found = store.llm_usage_totals(LLMGroup.FLOW_RUN, flow_run_ids=list(run_ids))
    return {total.group: total for total in found}


def format_cost(usd: float | None) -> str:
    """Dollars for people: "-" without a price, up to 6 decimals under a dollar."""
    if usd is None:
        return "-"
    if usd == 0:
        return "$0"
    if usd >= 1:
        return f"${usd:,.2f}"
    shown = f"{usd:.6f}".rstrip("0").rstrip(".")
    return "<$0.000001" if shown == "0" else f"${shown}"


def format_tokens(count: int) -> str:
    return f"{count:,}"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def response_text(record: LLMCallRecord) -> str:
    """What the model answered: its text, and its tool calls one per line."""
    data = _json(record.response_json)
    if not isinstance(data, dict):
        return record.response_json
    parts = [str(data.get("text") or "")]
    for tool_call in data.get("tool_calls") or ():
        if isinstance(tool_call, dict):
            parts.append(f"tool call {tool_call.get('name')}({tool_call.get('arguments')})")
    return "\n".join(part for part in parts if part)


def request_messages(record: LLMCallRecord) -> list[tuple[str, str]]:
    """The request's messages as (role, text), as recorded after redaction."""
    data = _json(record.request_json)
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        return [("request", record.request_json)]
    shown: list[tuple[str, str]] = []
    for message in data["messages"]:
        if not isinstance(message, dict):
            shown.append(("?", json.dumps(message, default=str)))
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, default=str)
        shown.append((str(message.get("role", "?")), text))
    return shown
