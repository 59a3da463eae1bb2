"""The streamed-text part of the store contract (mixed into `legato.store.base.Store`).

While a model call streams, the flow's process writes the text so far to one row
per call (replaced in place, throttled by the engine) so that another process,
the server, can show it live; the row is removed when the call ends and with its
run when the run is pruned. Best effort, not durable: nothing reads it back to
run a flow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LLMStreamText:
    """The text so far of one model call in flight."""

    call_key: str
    text: str
    updated: datetime


class LLMStreamStore(ABC):
    """Operations on the partial text of streamed model calls."""

    @abstractmethod
    def write_llm_stream(
        self, flow_run_id: str, call_key: str, text: str, *, now: datetime
    ) -> None:
        """Set the text so far of the call (flow run, call key), replacing the last one."""

    @abstractmethod
    def end_llm_stream(self, flow_run_id: str, call_key: str) -> None:
        """The call ended: remove its text (no error when there is none)."""

    @abstractmethod
    def list_llm_streams(self, flow_run_id: str) -> list[LLMStreamText]:
        """The texts of the run's calls in flight, by call key."""
