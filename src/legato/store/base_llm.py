"""The model-call part of the store contract (mixed into `legato.store.base.Store`).

What `legato.ai` stores: one `LLMCallRecord` per answered try of a model call
(written fenced by the run's owner, first write wins, so a resumed run never pays
twice for a try it already recorded), usage totals and monotonic counters for the
metrics, versioned prompts, and the copy a fork makes of a run's recorded steps.
The row mapping below is shared by the backends; each converts its own times.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato._llm_records import (
    LLMCallRecord,
    LLMGroup,
    LLMOutcome,
    LLMUsage,
    LLMUsageCounter,
    LLMUsageTotal,
    PromptSummary,
    PromptVersion,
)
from legato.errors import PromptVersionAmbiguousError

if TYPE_CHECKING:
    from legato.records import FlowRun

#: The fewest characters a prompt version prefix may have (shorter: exact versions only).
PROMPT_PREFIX_MIN = 4

#: How many versions matching a prefix are read to tell a unique one from an ambiguous one.
PROMPT_PREFIX_LIMIT = 10


class LLMStore(ABC):
    """Operations of durable model calls, their usage, prompts and forks."""

    @abstractmethod
    def record_llm_call(self, record: LLMCallRecord, owner_token: str) -> None:
        """Insert one answered try, fenced by the flow run's owner token in the same
        transaction (`RunOwnershipLost` and nothing written when another owner holds
        the run). A try already recorded at (flow run, call key, try number) is kept
        unchanged: the first write wins, a second one is no error."""

    @abstractmethod
    def list_llm_calls(
        self, flow_run_id: str, *, call_key: str | None = None
    ) -> list[LLMCallRecord]:
        """The run's recorded tries ordered by start, call key, try number; with
        ``call_key``, the tries of exactly that call."""

    @abstractmethod
    def llm_usage_totals(
        self,
        group_by: LLMGroup,
        *,
        flow_run_ids: Sequence[str] | None = None,
        since: datetime | None = None,
    ) -> list[LLMUsageTotal]:
        """Tries, tokens and cost summed per flow run, flow name, deployment name ("" for
        runs without one) or model, over the given runs (or all) and the tries started at
        or after ``since``; a fork's copies count for their run. Highest cost first, then
        by group."""

    @abstractmethod
    def llm_usage_counters(self) -> list[LLMUsageCounter]:
        """Monotonic totals per flow, deployment, provider and model (for the metrics):
        kept as tries are written, copies not counted, never lowered by pruning."""

    @abstractmethod
    def save_prompt(
        self, name: str, template: str, version: str, *, now: datetime
    ) -> PromptVersion:
        """Store a prompt version; when (name, version) is stored already, the stored
        one is returned unchanged."""

    @abstractmethod
    def get_prompt(self, name: str, version: str | None = None) -> PromptVersion | None:
        """The version of a prompt (None: its newest); a version may be given as a
        unique prefix of at least `PROMPT_PREFIX_MIN` characters
        (`PromptVersionAmbiguousError` when several versions start with it)."""

    @abstractmethod
    def list_prompts(self) -> list[PromptSummary]:
        """Every stored prompt, by name."""

    @abstractmethod
    def list_prompt_versions(self, name: str) -> list[PromptVersion]:
        """The versions of a prompt, newest first."""

    @abstractmethod
    def fork_flow_run(
        self,
        source_run_id: str,
        run: FlowRun,
        parameters_blob: bytes | None,
        call_keys: Sequence[str],
    ) -> None:
        """In one transaction: create ``run`` (as `create_flow_run`), copy into it the
        source run's task runs at exactly ``call_keys`` (new ids, everything else kept)
        and the source's model-call tries at those keys or under them (``key + "/"``),
        with new ids and ``copied_from`` the source run. `RunNotFoundError` when the
        source run does not exist; keys the source never recorded are not copied."""


# --- The row mapping shared by the backends -------------------------------------------
#
# The columns of `llm_call_columns` in each queries.sql, in this order:
# id, flow_run_id, call_key, try_number, provider, model, outcome, started,
# latency_seconds, input_tokens, output_tokens, cached_tokens, reasoning_tokens,
# cost_usd, finish_reason, params, request, response, error, prompt_name,
# prompt_version, copied_from.


def llm_call_params(record: LLMCallRecord, started: Any) -> tuple[Any, ...]:
    """The `llm_call_columns` of a record; ``started`` as the backend stores it."""
    usage = record.usage
    return (
        record.id,
        record.flow_run_id,
        record.call_key,
        record.try_number,
        record.provider,
        record.model,
        LLMOutcome(record.outcome).value,
        started,
        record.latency_seconds,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_tokens,
        usage.reasoning_tokens,
        record.cost_usd,
        record.finish_reason,
        record.params_json,
        record.request_json,
        record.response_json,
        record.error,
        record.prompt_name,
        record.prompt_version,
        record.copied_from,
    )


def llm_call_from_row(row: Sequence[Any], started: datetime) -> LLMCallRecord:
    """A record from the `llm_call_columns`; ``started`` converted by the backend."""
    return LLMCallRecord(
        id=row[0],
        flow_run_id=row[1],
        call_key=row[2],
        try_number=int(row[3]),
        provider=row[4],
        model=row[5],
        outcome=LLMOutcome(row[6]),
        started=started,
        latency_seconds=float(row[8]),
        usage=LLMUsage(int(row[9]), int(row[10]), int(row[11]), int(row[12])),
        cost_usd=None if row[13] is None else float(row[13]),
        finish_reason=row[14],
        params_json=row[15],
        request_json=row[16],
        response_json=row[17],
        error=row[18],
        prompt_name=row[19],
        prompt_version=row[20],
        copied_from=row[21],
    )


def usage_total_from_row(row: Sequence[Any]) -> LLMUsageTotal:
    """From (group, tries, input, output, cached, reasoning tokens, cost)."""
    return LLMUsageTotal(
        group=row[0],
        calls=int(row[1]),
        usage=LLMUsage(int(row[2]), int(row[3]), int(row[4]), int(row[5])),
        cost_usd=float(row[6]),
    )


def usage_counter_from_row(row: Sequence[Any]) -> LLMUsageCounter:
    """From (flow, deployment, provider, model, tries, the four token counts, cost)."""
    return LLMUsageCounter(
        flow_name=row[0],
        deployment_name=row[1],
        provider=row[2],
        model=row[3],
        calls=int(row[4]),
        usage=LLMUsage(int(row[5]), int(row[6]), int(row[7]), int(row[8])),
        cost_usd=float(row[9]),
    )


def prompt_from_row(row: Sequence[Any], created: datetime) -> PromptVersion:
    """From (name, version, template, created); ``created`` converted by the backend."""
    return PromptVersion(name=row[0], version=row[1], template=row[2], created=created)


def pick_prompt_version(
    name: str, given: str, found: Sequence[PromptVersion]
) -> PromptVersion | None:
    """The version ``given`` names among those found starting with it: an exact match,
    else the only one (`PromptVersionAmbiguousError` when several match)."""
    for one in found:
        if one.version == given:
            return one
    if not found:
        return None
    if len(found) > 1:
        raise PromptVersionAmbiguousError(name, given, [one.version for one in found])
    return found[0]
