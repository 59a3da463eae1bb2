"""The run page's "Model calls" panel in a real browser (Debian's Chromium, headless,
driven by Playwright) against a real `legato server`: the calls are listed with
their costs, a call's try opens to show its request and response, and a model's
answer holding a script is shown as text (the page fixture fails on any dialog)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser_support import Stack, expect_state
from _browser_support import screenshot as save_screenshot

from _llm_runs import MARKUP, PRICES, triage_run
from legato import ai


@pytest.fixture(autouse=True)
def prices() -> Iterator[None]:
    ai.set_prices(PRICES)
    yield
    ai.reset_prices()


def test_model_calls_panel_lists_calls_and_opens_a_response(
    stack: Stack, page: Any, tmp_path: Path
) -> None:
    run = triage_run(reply="Sorry about the double charge: the refund is on its way.")
    page.goto(f"{stack.url}/runs/{run.run_id}")
    expect_state(page, "completed")
    panel = page.locator(".llm-calls")
    assert "$0.00056" in panel.locator("[data-llm-totals]").inner_text()
    rows = panel.locator("tr.llm-call")
    assert rows.count() == 3
    assert [rows.nth(i).get_attribute("data-call-key") for i in range(3)] == [
        "llm[0]",
        "draft[0]/llm[0]",
        "summary",
    ]
    response = panel.locator("tr.llm-detail").nth(1).locator("pre.llm-response")
    assert not response.is_visible()  # folded until asked
    panel.locator("tr.llm-detail").nth(1).locator("summary").click()
    response.wait_for(state="visible")
    assert response.inner_text() == "Sorry about the double charge: the refund is on its way."

    summary = panel.locator("tr.llm-detail").nth(2)
    summary.locator("summary").click()
    assert summary.locator("pre.llm-response").inner_text() == MARKUP
    save_screenshot(page, tmp_path / "screenshots", "ai-run")
