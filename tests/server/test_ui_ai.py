"""Model calls in the web UI, on both backends: the run page's "Model calls" panel
(tries, validation errors, tokens, costs, prompts, request and response), the runs
list's cost column, the prompt pages with a diff, and the comparison of a run with
its fork. Model text is shown as text, never as markup."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import legato
from _llm_runs import CLASSIFY, PRICES, REPLY, triage_run
from legato import ai
from legato.ai.testing import FakeModel
from legato.client import Client
from legato.server import create_app
from legato.server.ui.ai_pages import CALLS_SHOWN
from legato.store import get_default_store
from legato.testing import run_flow

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(autouse=True)
def prices() -> Iterator[None]:
    ai.set_prices(PRICES)
    yield
    ai.reset_prices()


@pytest.fixture
def ui() -> Iterator[TestClient]:
    with TestClient(create_app(Client())) as http:
        yield http


def test_run_page_shows_each_call_with_tries_prompts_costs_and_escaped_text(
    ui: TestClient,
) -> None:
    run = triage_run()
    page = ui.get(f"/runs/{run.run_id}")
    assert page.status_code == 200
    html = page.text
    assert 'id="model-calls"' in html
    totals = re.search(r"data-llm-totals>(.*?)</div>", html, re.S)
    assert totals is not None
    assert "3 calls, 4 tries" in totals.group(1) and "400 in / 80 out" in totals.group(1)
    assert "$0.00056" in totals.group(1)
    # The call nested in the task is summed into that task.
    assert 'In task <span class="mono">draft[0]</span>: 1 call, 1 try' in html
    keys = re.findall(r'<tr class="llm-call" data-call-key="([^"]+)"', html)
    assert keys == ["llm[0]", "draft[0]/llm[0]", "summary"]
    # The validation retry is two tries, the first with its error; both billed.
    first = html[html.index('data-call-key="llm[0]"') : html.index('data-call-key="draft[0]')]
    assert first.count('class="llm-try"') == 2
    assert "try 1: invalid" in first and "Validation error:" in first
    assert "try 2: ok" in first and first.count("$0.00014") == 2 and "$0.00028" in first
    # Prompts link to their version on the prompt page; the rendered request is shown.
    assert f'href="/prompts/classify-ticket#v-{CLASSIFY.version}"' in first
    assert "You triage support tickets." in first and "I was charged twice" in first
    assert f"draft-reply@{REPLY.version}" in html
    # The bodies are folded: nothing is open until asked.
    assert "<details open" not in html
    # A model's answer holding markup is text.
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Thanks &amp; regards" in html


def test_a_run_without_model_calls_has_no_panel_and_the_runs_list_hides_cost(
    ui: TestClient,
) -> None:
    @legato.flow
    def plain() -> int:
        return 1

    quiet = run_flow(plain).raise_for_state()
    assert 'id="model-calls"' not in ui.get(f"/runs/{quiet.run_id}").text
    assert '<th class="num">Cost</th>' not in ui.get("/runs").text

    costly = triage_run()
    listed = ui.get("/runs").text
    assert '<th class="num">Cost</th>' in listed
    row = listed[listed.index(f'href="/runs/{costly.run_id}"') :]
    assert "$0.00056" in row[: row.index("</tr>")]
    quiet_row = listed[listed.index(f'href="/runs/{quiet.run_id}"') :]
    assert "$" not in quiet_row[: quiet_row.index("</tr>")]


def test_prompt_pages_list_versions_and_diff_two(ui: TestClient) -> None:
    store = get_default_store()
    triage_run()
    newer = ai.Prompt("classify-ticket", "Classify <this> ticket as billing or bug: {ticket}")
    model = FakeModel.returning(["bug"])

    @legato.flow
    def reclassify() -> str:
        return str(ai.call(model, newer(ticket="crash")).output)

    run_flow(reclassify).raise_for_state()
    listed = ui.get("/prompts")
    assert listed.status_code == 200
    row = listed.text[listed.text.index('href="/prompts/classify-ticket"') :]
    assert '<td class="num">2</td>' in row[: row.index("</tr>")]
    assert 'href="/prompts/draft-reply"' in listed.text
    assert 'href="http://testserver/prompts" class="current"' in listed.text  # the nav link

    page = ui.get("/prompts/classify-ticket").text
    versions = [v.version for v in store.list_prompt_versions("classify-ticket")]
    assert versions == [newer.version, CLASSIFY.version]
    assert page.index(f'id="v-{newer.version}"') < page.index(f'id="v-{CLASSIFY.version}"')
    assert "Classify &lt;this&gt; ticket" in page

    diff = ui.get(
        "/prompts/classify-ticket", params={"a": CLASSIFY.version[:6], "b": newer.version}
    )
    assert diff.status_code == 200
    removed = re.findall(r'<span class="diff-del">(.*?)</span>', diff.text)
    added = re.findall(r'<span class="diff-add">(.*?)</span>', diff.text)
    assert any("billing, bug or other" in line for line in removed)
    assert any("Classify &lt;this&gt; ticket as billing or bug" in line for line in added)

    assert ui.get("/prompts/no-such-prompt").status_code == 404
    missing = ui.get("/prompts/classify-ticket", params={"a": "ffffffff"})
    assert missing.status_code == 404 and "has no version" in missing.text


def test_compare_page_sets_two_runs_side_by_side_by_call_key(ui: TestClient) -> None:
    left = triage_run(reply="We refunded the double charge.")
    right = triage_run(reply="Sorry! <b>Refund</b> on its way.")
    page = ui.get(f"/runs/{left.run_id}/compare/{right.run_id}")
    assert page.status_code == 200
    html = page.text
    rows = re.findall(r'<tr data-call-key="([^"]+)">', html)
    assert rows == ["llm[0]", "draft[0]/llm[0]", "summary"]
    draft = html[html.index('data-call-key="draft[0]/llm[0]"') :]
    draft = draft[: draft.index("</tr>")]
    assert "We refunded the double charge." in draft
    assert "Sorry! &lt;b&gt;Refund&lt;/b&gt; on its way." in draft and "<b>" not in draft
    assert "same" not in draft
    classify = html[html.index('data-call-key="llm[0]"') : html.index('data-call-key="draft')]
    assert '<span class="muted">same</span>' in classify
    assert html.count("$0.00056") >= 2  # both runs' totals
    assert ui.get(f"/runs/{left.run_id}/compare/nosuchrun").status_code == 404


def test_a_fork_links_to_the_comparison_with_its_source(ui: TestClient) -> None:
    source = triage_run()
    model = FakeModel.returning(["hi"])

    @legato.flow(tags=[f"forked-from:{source.run_id}"])
    def forked() -> str:
        return str(ai.call(model, "hello").output)

    fork = run_flow(forked).raise_for_state()
    page = ui.get(f"/runs/{fork.run_id}").text
    assert f'href="http://testserver/runs/{source.run_id}/compare/{fork.run_id}"' in page
    assert "compare with the run it was forked from" not in ui.get(f"/runs/{source.run_id}").text


def test_a_run_with_many_calls_lists_the_first_ones_and_totals_them_all(ui: TestClient) -> None:
    model = FakeModel(usage=ai.LLMUsage(10, 1)).returning(lambda request: "ok")

    @legato.flow
    def chatty(n: int) -> int:
        for i in range(n):
            ai.call(model, f"question {i}")
        return n

    run = run_flow(chatty, n=CALLS_SHOWN + 5).raise_for_state()
    html = ui.get(f"/runs/{run.run_id}").text
    assert html.count('<tr class="llm-call"') == CALLS_SHOWN
    assert f"{CALLS_SHOWN + 5} calls, {CALLS_SHOWN + 5} tries" in html
    assert "(5 more are in the totals)" in html
