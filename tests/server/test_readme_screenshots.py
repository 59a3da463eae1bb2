"""The README's screenshots, from the examples' own runs, checked as they are taken.

A user's project folder holds a copy of examples/; the test does what the
README tells a user to do there: `legato run examples/etl.py:etl` (its
exchange-rate lookups fail once each and are retried), `legato run
examples/approval.py:release` (paused) then `legato resume --input`, and
`legato deploy` of both examples (the ETL on a nightly cron) with a real
`legato worker` running a triggered run of each. Then it opens the pages in
Chromium, checks what each one shows and takes its picture: into
``$LEGATO_SCREENSHOTS`` when set (``LEGATO_SCREENSHOTS=docs/screenshots``
refreshes the README's), else into the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser_support import Stack, expect_state, screenshot, wait_state

from legato.client import Client
from legato.states import StateType

REPO = Path(__file__).resolve().parents[2]
MAPPED = ("extract", "exchange_rate", "transform")


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's project folder with the examples in it, the current folder of every process.

    Not under pytest's temporary folder: the ETL says where it writes, and the
    pictures show that line."""
    with tempfile.TemporaryDirectory(prefix="shop-") as folder:
        here = Path(folder)
        (here / "examples").mkdir()
        for example in ("etl.py", "approval.py"):
            shutil.copy(REPO / "examples" / example, here / "examples" / example)
        monkeypatch.chdir(here)
        yield here


@pytest.fixture
def project_stack(project: Path, tmp_path: Path, legato_home: Path) -> Iterator[Stack]:
    """The server and a worker, started in the project folder, as a user would."""
    started = Stack(tmp_path)
    started.up()
    yield started
    started.down()


def legato(project: Path, *args: str, expect: int = 0) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "legato", *args],
        cwd=project,
        env=dict(os.environ, COLUMNS="100"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == expect, f"legato {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def run_id_of(output: str) -> str:
    data = json.loads(output)
    assert isinstance(data, dict)
    return str(data["id"])


def test_readme_screenshots_show_the_examples_runs(
    project: Path,
    project_stack: Stack,
    page: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    stack = project_stack
    # Relative to where pytest was started: the test runs in the project folder.
    started_in = request.config.invocation_params.dir
    pictures = started_in / (os.environ.get("LEGATO_SCREENSHOTS") or tmp_path / "screenshots")
    client = Client()

    # What the README's "Try it" and "Human in the loop" do, in a terminal.
    etl_run = run_id_of(legato(project, "run", "examples/etl.py:etl", "--json"))
    assert (project / "revenue_by_customer.json").exists()
    held = run_id_of(
        legato(
            project, "run", "examples/approval.py:release", "-p", "version=1.4.0", "--json",
            expect=3,
        )
    )  # fmt: skip
    approval = {"approved": True, "reviewer": "ana", "comment": "changelog checked"}
    legato(project, "resume", held, "--input", json.dumps(approval))
    assert client.get_run(held).state is StateType.COMPLETED

    # Deployments for the worker, the ETL on a nightly schedule.
    legato(
        project, "deploy", "examples/etl.py:etl", "--name", "etl-nightly",
        "--cron", "0 2 * * *", "--timezone", "Europe/Paris", "-p", "min_amount=50",
    )  # fmt: skip
    legato(project, "deploy", "examples/approval.py:release", "--name", "release")
    nightly = run_id_of(legato(project, "trigger", "etl-nightly", "--json"))
    waiting = run_id_of(legato(project, "trigger", "release", "-p", "version=1.5.0", "--json"))
    wait_state(client, nightly, {StateType.COMPLETED}, stack)
    wait_state(client, waiting, {StateType.PAUSED}, stack)

    # The ETL run: one task run per file at each mapped step, each rate lookup retried once.
    page.goto(f"{stack.url}/runs/{etl_run}")
    expect_state(page, "completed")
    tasks = client.task_runs(etl_run)
    for name in MAPPED:
        assert sorted(t.call_key for t in tasks if t.task_name == name) == [
            f"{name}[{i}]" for i in range(3)
        ]
    assert [t.attempts for t in tasks if t.task_name == "exchange_rate"] == [2, 2, 2]
    graph = page.locator("svg[aria-label='task graph']").text_content() or ""
    assert all(f"{name}[{i}]" in graph for name in MAPPED for i in range(3)), graph
    timeline = page.locator("svg[aria-label='timeline of task runs']")
    retried = [f"exchange_rate[{i}] ↻2" for i in range(3)]
    assert all(label in (timeline.text_content() or "") for label in retried), (
        timeline.text_content() or ""
    )
    failed_bars = timeline.locator("rect").locator("xpath=self::*[contains(@class, 'failed')]")
    assert failed_bars.count() == 3  # the first attempt of each lookup
    assert "429 Too Many Requests" in page.inner_text("body")
    assert "revenue:" in page.inner_text("#logs")
    screenshot(page, pictures, "run")

    # A release waiting for approval, approved through its generated form.
    page.goto(stack.url + "/approvals")
    form = page.locator("form.generated")
    assert form.count() == 1
    assert page.locator(f"a[href$='/runs/{waiting}']").count() >= 1, page.inner_text("main")
    form.locator("select[name='field.approved']").select_option("true")
    form.locator("input[name='field.reviewer']").fill("ana")
    form.locator("input[name='field.comment']").fill("staging looks good")
    screenshot(page, pictures, "approvals")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/runs/{waiting}?**")
    expect_state(page, "completed")
    assert "deployed app-1.5.0.tar.gz" in page.inner_text("#live")
    builds = [t for t in client.task_runs(waiting) if t.task_name == "build"]
    assert len(builds) == 1 and builds[0].attempts == 1  # replayed on resume, not rebuilt
    screenshot(page, pictures, "approved-run")

    # The deployments with the ETL's schedule and its next runs.
    page.goto(stack.url + "/deployments")
    row = page.locator("tr", has=page.locator("a", has_text="etl-nightly"))
    assert "cron 0 2 * * * (Europe/Paris)" in row.inner_text(), row.inner_text()
    next_runs = re.findall(r"\d{4}-\d\d-\d\d \d\d:00:00", row.inner_text())
    assert len(next_runs) == 3 and len(set(next_runs)) == 3, row.inner_text()  # one a night
    assert page.locator("tr", has=page.locator("a", has_text="release")).count() == 1
    screenshot(page, pictures, "deployments")

    # The nightly ETL's page: schedule, next runs, a "run now" form, the worker's run.
    page.click("a:has-text('etl-nightly')")
    page.wait_for_selector("h1:has-text('Deployment etl-nightly')")
    assert page.input_value("input[name='field.min_amount']") == "50"  # the deployed default
    assert page.locator(f"#live a[href$='/runs/{nightly}']").count() >= 1
    screenshot(page, pictures, "deployment")

    # The runs, newest first: the worker's and the terminal's, all finished.
    page.goto(stack.url + "/runs")
    rows = page.locator("tbody tr")
    shown = [rows.nth(i).locator("a[href*='/runs/']").first.get_attribute("href") for i in range(4)]
    assert rows.count() == 4 and [str(h).rsplit("/", 1)[1] for h in shown] == [
        waiting,
        nightly,
        held,
        etl_run,
    ], page.inner_text("main")
    screenshot(page, pictures, "runs")

    # The dashboard: the latest runs, none failed.
    page.goto(stack.url + "/")
    page.wait_for_selector("text=failure rate")
    assert page.locator(".stat .value").nth(1).inner_text() == "0.0%"
    latest = page.locator(".card", has=page.locator("h2", has_text="Latest runs"))
    for run_id in (waiting, nightly, held, etl_run):
        assert latest.locator(f"a[href$='/runs/{run_id}']").count() == 1, latest.inner_text()
    screenshot(page, pictures, "dashboard")


def test_readme_ai_screenshot_shows_model_calls_prompts_and_costs(
    stack: Stack, page: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The README's AI section: the run page of a support-ticket triage run made with
    the fake model (a structured classification retried once, a drafted reply from a
    versioned prompt inside a task, a summary), with its Model calls panel open."""
    from _llm_runs import CLASSIFY, PRICES, triage_run
    from legato import ai

    started_in = request.config.invocation_params.dir
    pictures = started_in / (os.environ.get("LEGATO_SCREENSHOTS") or tmp_path / "screenshots")
    ai.set_prices(PRICES)
    try:
        run = triage_run(reply="Sorry about the double charge: the refund is on its way.")
    finally:
        ai.reset_prices()
    page.goto(f"{stack.url}/runs/{run.run_id}")
    expect_state(page, "completed")
    panel = page.locator(".llm-calls")
    assert "3 calls, 4 tries" in panel.locator("[data-llm-totals]").inner_text()
    first = panel.locator("tr.llm-detail").first
    for index in range(2):  # the invalid answer and the validated one
        first.locator("summary").nth(index).click()
    assert "Validation error" in first.inner_text()
    assert panel.locator(f"a[href$='#v-{CLASSIFY.version}']").count() == 1
    panel.scroll_into_view_if_needed()
    screenshot(page, pictures, "ai-run-page")
