"""Testing a flow with legato.testing: run it, inject faults, crash it everywhere.

Run it: pytest examples/test_etl_kit.py  (the legato_store fixture comes with legato)
"""

from pathlib import Path

import pytest
from etl import etl

from legato import flow, task
from legato.errors import UpstreamTaskFailedError
from legato.store.base import Store
from legato.testing import crash_at, crash_matrix, effects, fail_task, resume, run_flow


def test_etl_runs_and_records_every_call(legato_store: Store, tmp_path: Path) -> None:
    run = run_flow(etl, rows_per_file=10, out_dir=str(tmp_path))
    run.raise_for_state()
    assert run.result["customers"] == 7
    assert run.task_run("exchange_rate[1]").attempts == 2  # failed once, retried
    assert "revenue:" in " ".join(run.messages)


def test_a_rate_api_that_stays_down_fails_the_run(legato_store: Store, tmp_path: Path) -> None:
    # Four attempts (retries=3) raise instead of calling the API.
    with fail_task("exchange_rate[0]", ConnectionError("rate API down"), times=4):
        run = run_flow(etl, rows_per_file=10, out_dir=str(tmp_path))
    assert run.state.is_failed() and run.result is None  # run_flow did not raise
    assert run.task_run("exchange_rate[0]").attempts == 4
    with pytest.raises(UpstreamTaskFailedError, match=r"exchange_rate\[0\] is failed"):
        run.raise_for_state()


def test_a_crash_before_the_load_resumes_to_the_same_result(
    legato_store: Store, tmp_path: Path
) -> None:
    with crash_at("load[0]", when="before_commit"):
        crashed = run_flow(etl, rows_per_file=10, out_dir=str(tmp_path))
    assert crashed.state.is_crashed()
    resumed = resume(crashed)  # same run id; completed calls replay
    assert resumed.run_id == crashed.run_id and resumed.result["customers"] == 7


def test_etl_survives_a_crash_at_every_task_boundary(legato_store: Store, tmp_path: Path) -> None:
    crash_matrix(etl, {"rows_per_file": 10, "out_dir": str(tmp_path)}).raise_if_failed()


@task
def charge(order: str) -> str:
    if effects.once("charge", order):  # the payment provider dedups on the order id
        pass  # ... call the provider here ...
    return f"charged {order}"


@flow
def checkout(orders: list[str]) -> list[str]:
    return [charge(order) for order in orders]


def test_checkout_never_charges_twice(legato_store: Store) -> None:
    report = crash_matrix(checkout, {"orders": ["o-1", "o-2"]})
    assert report.ok, report.describe()
    assert effects.counts()[("charge", "o-1")] == 1
