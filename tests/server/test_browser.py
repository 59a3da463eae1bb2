"""The web UI in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real `legato server` and a real `legato worker`.

It opens the dashboard, a failed run's page and retries it to completion,
approves a paused run through its generated form, triggers a deployment,
and watches logs arrive live. Screenshots of each page it checks go to the
test's temporary folder, to look at when a test fails; the README's pictures
come from the examples' own runs (test_readme_screenshots.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _browser_support import Stack, expect_state, wait_for, wait_state
from _browser_support import screenshot as save_screenshot

from legato.client import Client
from legato.records import Schedule
from legato.states import StateType

FLOWS = """
import time
from pathlib import Path

from legato import flow, get_run_logger, pause_flow_run, task
from legato.input import RunInput


@task
def fetch(i: int) -> int:
    return i * i


@task
def load(rows: list, marker: str) -> int:
    if not Path(marker).exists():
        raise RuntimeError("the warehouse is not reachable yet")
    return sum(rows)


@flow
def etl(n: int = 40, marker: str = "/nonexistent") -> int:
    get_run_logger().info("loading <script>alert('xss')</script> rows")
    return load(fetch.map(range(n)), marker)


class Approval(RunInput):
    approved: bool
    note: str = ""
    reviewers: int = 1


@flow
def release(version: str = "1.0") -> str:
    answer = pause_flow_run(wait_for_input=Approval)
    return f"{version}: {'shipped' if answer.approved else 'held'} ({answer.note})"


@flow
def ticking(ticks: int = 12) -> int:
    for i in range(ticks):
        get_run_logger().info("tick %d", i)
        time.sleep(0.4)
    return ticks
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "browser_flows.py"
    path.write_text(FLOWS)
    return path


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    save_screenshot(page, tmp_path / "screenshots", name)


def test_retry_a_failed_run_from_its_page_and_see_it_complete(
    stack: Stack, page: Any, flows: Path, tmp_path: Path
) -> None:
    client = Client()
    marker = tmp_path / "warehouse-up"
    client.deploy(f"{flows}:etl", name="etl-nightly", parameters={"marker": str(marker)})
    run = client.trigger("etl-nightly")
    wait_state(client, run.id, {StateType.FAILED}, stack)

    page.goto(stack.url + "/")
    page.wait_for_selector("text=failure rate")
    assert page.locator(".stat .value").nth(1).inner_text() == "100.0%"
    screenshot(page, tmp_path, "dashboard")

    page.goto(f"{stack.url}/runs/{run.id}")
    expect_state(page, "failed")
    assert "the warehouse is not reachable yet" in page.inner_text("body")
    # The map of 40 fetches is one node; the log line's <script> is text.
    assert page.locator("svg[aria-label='task graph'] a").count() == 2
    assert "alert('xss')" in page.inner_text("#logs")
    screenshot(page, tmp_path, "failed-run")

    marker.touch()
    page.click("text=Retry from failure")
    expect_state(page, "completed")
    assert "Queued again" in page.inner_text("#live")
    final = client.get_run(run.id)
    assert final.state is StateType.COMPLETED and final.attempts >= 2
    fetches = [t for t in client.task_runs(run.id) if t.task_name == "fetch"]
    assert len(fetches) == 40 and all(t.attempts == 1 for t in fetches)  # not run twice
    # The timeline shows load's two attempts: failed, then completed after the retry.
    bars = page.locator("svg[aria-label='timeline of task runs'] rect")
    assert bars.locator("xpath=self::*[contains(@class, 'failed')]").count() == 1
    screenshot(page, tmp_path, "run")
    page.click("svg[aria-label='task graph'] a >> nth=0")  # open the folded map
    page.wait_for_selector("#group")
    assert page.locator("#group tbody tr").count() == 40


def test_approve_a_paused_run_through_its_form(
    stack: Stack, page: Any, flows: Path, tmp_path: Path
) -> None:
    client = Client()
    client.deploy(f"{flows}:release", name="release")
    run = client.trigger("release", {"version": "2.1"})
    wait_state(client, run.id, {StateType.PAUSED}, stack)

    page.goto(stack.url + "/approvals")
    form = page.locator("form.generated")
    form.locator("select[name='field.approved']").select_option("true")
    form.locator("input[name='field.note']").fill("looks good")
    screenshot(page, tmp_path, "approvals")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/runs/{run.id}?**")
    expect_state(page, "completed")
    assert "2.1: shipped (looks good)" in page.inner_text("#live")


def test_an_invalid_approval_keeps_the_run_paused(
    stack: Stack, page: Any, flows: Path, tmp_path: Path
) -> None:
    client = Client()
    client.deploy(f"{flows}:release", name="release")
    run = client.trigger("release")
    wait_state(client, run.id, {StateType.PAUSED}, stack)
    page.goto(f"{stack.url}/runs/{run.id}")
    page.fill("input[name='field.reviewers']", "two")
    page.locator("form.generated button[type=submit]").click()
    page.wait_for_selector(".problems")
    assert "reviewers" in page.inner_text(".problems")
    assert page.input_value("input[name='field.reviewers']") == "two"  # kept to correct
    assert client.get_run(run.id).state is StateType.PAUSED


def test_trigger_a_deployment_and_watch_its_logs_live(
    stack: Stack, page: Any, flows: Path, tmp_path: Path
) -> None:
    client = Client()
    client.deploy(f"{flows}:ticking", name="ticker", schedules=[Schedule(cron="0 3 * * *")])
    page.goto(stack.url + "/deployments")
    screenshot(page, tmp_path, "deployments")
    page.click("text=ticker")
    page.fill("input[name='field.ticks']", "many")
    page.click("button:has-text('Run now')")
    page.wait_for_selector(".problems")
    assert "ticks" in page.inner_text(".problems") and client.list_runs() == []
    screenshot(page, tmp_path, "run-now-form")

    page.fill("input[name='field.ticks']", "15")
    page.click("button:has-text('Run now')")
    page.wait_for_selector("text=Queued run")
    page.click(".notice a")
    page.wait_for_selector("#logs")
    page.evaluate("window.__same_page = true")  # gone if the page reloads
    wait_for(lambda: "tick 14" in page.inner_text("#logs"), "the last log line shows")
    expect_state(page, "completed")
    assert page.evaluate("window.__same_page") is True
    text = page.inner_text("#logs")
    assert all(f"tick {i}" in text for i in range(15))  # every line once, in order
    assert text.index("tick 2") < text.index("tick 10") and text.count("tick 14") == 1
    (run,) = client.list_runs()
    assert run.parameters == {"ticks": 15} and run.state is StateType.COMPLETED
    page.goto(stack.url + "/runs")
    screenshot(page, tmp_path, "runs")
