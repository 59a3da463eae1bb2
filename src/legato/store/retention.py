"""What every backend's retention shares: which tables the status counts, which
states a prune may delete."""

from __future__ import annotations

from collections.abc import Sequence

from legato.errors import ConfigurationError
from legato.states import FINAL_STATES, StateType

COUNTED_TABLES = ("flow_runs", "task_runs", "logs", "run_inputs", "task_cache", "deployments")


def final_states(states: Sequence[StateType]) -> list[StateType]:
    """The states a prune may delete (all final ones when none are given); a
    ConfigurationError names any state that is not final."""
    chosen = [StateType(state) for state in states] or sorted(FINAL_STATES)
    active = [state.value for state in chosen if state not in FINAL_STATES]
    if active:
        allowed = ", ".join(sorted(state.value for state in FINAL_STATES))
        raise ConfigurationError(
            f"cannot prune runs that are {', '.join(active)}: only finished runs can be "
            f"deleted ({allowed})"
        )
    return chosen
