"""The prompt and model-call methods of `legato.client.Client`, and their JSON views.

Prompts are stored once per version (content hash) by the model calls that use
them; here they are listed, shown (template and system part apart) and compared
(a unified diff of each part). A run's model-call tries are read as the run page
and ``GET /api/runs/{id}/llm_calls`` show them.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato._llm_records import LLMCallRecord, PromptSummary, PromptVersion
from legato.client.views import isoformat
from legato.errors import PromptNotFoundError

if TYPE_CHECKING:
    from legato.store.base import Store


@dataclass(frozen=True, slots=True)
class PromptDiff:
    """Two versions of a prompt and the unified diffs of their template and system parts
    (empty lists: that part is the same)."""

    old: PromptVersion
    new: PromptVersion
    template_diff: list[str]
    system_diff: list[str]


def split_stored_text(text: str) -> tuple[str, str | None]:
    """(template, system) of a stored version (see `legato.ai.prompts`)."""
    from legato.ai.prompts import split_stored_text as split

    return split(text)


def _diff(old: str | None, new: str | None, label: str, a: str, b: str) -> list[str]:
    if old == new:
        return []
    return list(
        difflib.unified_diff(
            (old or "").splitlines(),
            (new or "").splitlines(),
            fromfile=f"{label} {a}",
            tofile=f"{label} {b}",
            lineterm="",
        )
    )


class PromptClientOps:
    """Prompts as versioned artifacts, and the model-call tries of a run."""

    @property
    def store(self) -> Store:  # provided by Client
        raise NotImplementedError

    def prompts(self) -> list[PromptSummary]:
        """Every stored prompt, by name, with its number of versions and the newest."""
        return self.store.list_prompts()

    def prompt_versions(self, name: str) -> list[PromptVersion]:
        """The versions of prompt ``name``, newest first (`PromptNotFoundError`: none)."""
        versions = self.store.list_prompt_versions(name)
        if not versions:
            raise PromptNotFoundError(name)
        return versions

    def prompt(self, name: str, version: str | None = None) -> PromptVersion:
        """One version of prompt ``name`` (default the newest; a unique prefix of at
        least 4 characters works). `PromptNotFoundError` when there is no such one,
        `PromptVersionAmbiguousError` when the prefix matches several."""
        found = self.store.get_prompt(name, version)
        if found is None:
            if version is not None and not self.store.list_prompt_versions(name):
                raise PromptNotFoundError(name)
            raise PromptNotFoundError(name, version)
        return found

    def prompt_diff(self, name: str, old: str, new: str) -> PromptDiff:
        """The differences from version ``old`` of prompt ``name`` to version ``new``."""
        a, b = self.prompt(name, old), self.prompt(name, new)
        a_template, a_system = split_stored_text(a.template)
        b_template, b_system = split_stored_text(b.template)
        return PromptDiff(
            a,
            b,
            _diff(a_template, b_template, "template", a.version, b.version),
            _diff(a_system, b_system, "system", a.version, b.version),
        )

    def llm_calls(self, id_or_prefix: str) -> list[LLMCallRecord]:
        """The model-call tries of a run (an id or unambiguous prefix), in order."""
        from legato.engine.calls import resolve_run_id

        return self.store.list_llm_calls(resolve_run_id(self.store, id_or_prefix))


# --- JSON views ---------------------------------------------------------------------


def prompt_summary_to_dict(summary: PromptSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "versions": summary.versions,
        "latest_version": summary.latest_version,
        "latest_created": isoformat(summary.latest_created),
    }


def prompt_version_to_dict(version: PromptVersion) -> dict[str, Any]:
    template, system = split_stored_text(version.template)
    return {
        "name": version.name,
        "version": version.version,
        "created": isoformat(version.created),
        "template": template,
        "system": system,
    }


def prompt_diff_to_dict(diff: PromptDiff) -> dict[str, Any]:
    return {
        "name": diff.old.name,
        "old": diff.old.version,
        "new": diff.new.version,
        "template_diff": "\n".join(diff.template_diff),
        "system_diff": "\n".join(diff.system_diff),
    }


def _parsed(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:  # recorded by an older writer as plain text: shown as it is
        return text


def llm_call_to_dict(record: LLMCallRecord) -> dict[str, Any]:
    """One recorded try as JSON (request, response and parameters parsed)."""
    usage = record.usage
    return {
        "id": record.id,
        "call_key": record.call_key,
        "try": record.try_number,
        "outcome": record.outcome.value,
        "provider": record.provider,
        "model": record.model,
        "started": isoformat(record.started),
        "latency_seconds": record.latency_seconds,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
        },
        "cost_usd": record.cost_usd,
        "finish_reason": record.finish_reason,
        "prompt_name": record.prompt_name,
        "prompt_version": record.prompt_version,
        "params": _parsed(record.params_json),
        "request": _parsed(record.request_json),
        "response": _parsed(record.response_json),
        "error": record.error,
        "copied_from": record.copied_from,
    }
