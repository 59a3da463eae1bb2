"""Model calls, tokens and costs in the CLI (both backends): `legato show` (a "Model
calls" section with per-task totals), `legato runs` (a cost column only when a run
made calls), the `llm` totals of `--json`, and `legato ai costs`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import legato
from _llm_runs import CLASSIFY, PRICES, REPLY, TRY_COST, triage_run
from legato import ai
from legato.ai.testing import FakeModel
from legato.testing import run_flow

if TYPE_CHECKING:  # conftest is not importable as a module; only its type is used
    from conftest import Cli

pytestmark = pytest.mark.usefixtures("backend")  # SQLite and PostgreSQL


@pytest.fixture(autouse=True)
def prices() -> Iterator[None]:
    ai.set_prices(PRICES)
    yield
    ai.reset_prices()


@pytest.fixture
def here(cli: Cli, legato_home: Path) -> Cli:
    """The CLI on the store the runs of this test were made in (in this process)."""
    return replace(cli, home=legato_home)


def plain_run() -> str:
    @legato.flow
    def plain() -> int:
        return 1

    return run_flow(plain).raise_for_state().run_id


def test_show_lists_calls_with_task_totals_and_run_totals(here: Cli) -> None:
    run = triage_run()
    shown = here("show", run.run_id)
    assert shown.code == 0, str(shown)
    section = shown.stdout[shown.stdout.index("Model calls:") :]
    lines = {line.split()[0]: line.split() for line in section.splitlines()[2:]}
    assert lines["llm[0]"][:6] == ["llm[0]", "fake-model", "2", "200", "40", "$0.00028"]
    assert f"classify-ticket@{CLASSIFY.version}" in lines["llm[0]"]
    assert f"draft-reply@{REPLY.version}" in lines["draft[0]/llm[0]"]
    assert lines["summary"][-2:] == ["-", "ok"]  # no prompt
    assert lines["draft[0]"][:2] == ["draft[0]", "total"]
    assert lines["total"][:7] == ["total", "3", "calls", "4", "400", "80", "$0.00056"]

    data = here("show", run.run_id, "--json").json()
    assert data["llm"] == {
        "calls": 4,
        "input_tokens": 400,
        "output_tokens": 80,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": pytest.approx(run.cost_usd),
    }

    quiet = plain_run()
    plain_shown = here("show", quiet)
    assert plain_shown.code == 0 and "Model calls" not in plain_shown.stdout
    assert here("show", quiet, "--json").json()["llm"]["calls"] == 0


def test_runs_has_a_cost_column_only_when_a_listed_run_made_calls(here: Cli) -> None:
    quiet = plain_run()
    without = here("runs")
    assert without.code == 0 and "COST" not in without.stdout
    run = triage_run()
    table = here("runs").stdout.splitlines()
    assert table[0].split()[-1] == "COST"
    by_id = {line.split()[0]: line for line in table[1:]}
    assert by_id[run.run_id[:8]].endswith("$0.00056")
    assert by_id[quiet[:8]].endswith("-")

    listed = {r["id"]: r["llm"] for r in here("runs", "--json").json()}
    assert listed[run.run_id]["calls"] == 4
    assert listed[run.run_id]["cost_usd"] == pytest.approx(4 * TRY_COST)
    assert listed[quiet] == {
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": 0,
    }


def test_ai_costs_sums_per_flow_deployment_and_model(here: Cli) -> None:
    assert "no model calls yet" in here("ai", "costs").stdout
    triage_run()
    triage_run()
    other = FakeModel(model="other-model", usage=ai.LLMUsage(10, 5)).returning(["x"])

    @legato.flow
    def note() -> str:
        return str(ai.call(other, "hello").output)

    run_flow(note).raise_for_state()

    by_flow = here("ai", "costs", "--json").json()
    assert [(row["flow"], row["calls"]) for row in by_flow] == [("triage", 8), ("note", 1)]
    assert by_flow[0]["input_tokens"] == 800 and by_flow[0]["output_tokens"] == 160
    assert by_flow[0]["cost_usd"] == pytest.approx(8 * TRY_COST)
    assert by_flow[1]["cost_usd"] == 0  # no price for other-model

    by_model = here("ai", "costs", "--by", "model", "--since", "1h", "--json").json()
    assert {row["model"]: row["calls"] for row in by_model} == {"fake-model": 8, "other-model": 1}
    by_deployment = here("ai", "costs", "--by", "deployment", "--json").json()
    assert by_deployment == [
        {
            "deployment": "",
            "calls": 9,
            "input_tokens": 810,
            "output_tokens": 165,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cost_usd": pytest.approx(8 * TRY_COST),
        }
    ]

    table = here("ai", "costs", "--by", "deployment").stdout.splitlines()
    assert table[0].split() == [
        "DEPLOYMENT",
        "TRIES",
        "INPUT",
        "OUTPUT",
        "CACHED",
        "REASONING",
        "COST",
    ]
    assert table[1].split()[:2] == ["-", "9"]
    assert table[-1].split()[:2] == ["total", "9"]

    bad = here("ai", "costs", "--since", "soon")
    assert bad.code == 2 and "not an age" in bad.stderr
