"""Artifacts on the run page and variables on their page, on both backends:
hostile content is shown as text, never as markup or a script's link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from legato.client import Client
from legato.server import create_app

pytestmark = pytest.mark.usefixtures("backend")

FLOWS = """
from legato import flow
from legato.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)


@flow
def publishes() -> None:
    create_markdown_artifact(
        "# Report\\n<script>alert('md')</script>", key="report", description="<b>daily</b>"
    )
    create_table_artifact(
        [{"region": "<script>alert('cell')</script>", "sales": i} for i in range(60)],
        key="sales",
    )
    create_link_artifact("javascript:alert('link')", link_text="<i>click me</i>", key="bad-link")
    create_link_artifact("https://example.com/data.csv?a=1&b=2", link_text="the data")
    progress = create_progress_artifact(10.0, key="load")
    update_progress_artifact(progress, 42.5)


@flow
def quiet() -> None:
    pass
"""


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def ui(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as http:
        yield http


def run_of(client: Client, tmp_path: Path, name: str) -> str:
    path = tmp_path / "artifact_flows.py"
    path.write_text(FLOWS)
    state = client.run_flow(client.load_flow(f"{path}:{name}"), {})
    if state.run_id is None:
        raise RuntimeError("the flow run has no id")
    return state.run_id


def test_the_run_page_shows_every_kind_of_artifact_escaped(
    ui: TestClient, client: Client, tmp_path: Path
) -> None:
    run_id = run_of(client, tmp_path, "publishes")
    answer = ui.get(f"/runs/{run_id}")
    assert answer.status_code == 200 and "content-security-policy" in answer.headers
    page = answer.text
    assert "<script>alert" not in page and "<b>daily" not in page and "<i>click" not in page
    section = page[page.index("<h2>Artifacts</h2>") :]
    # Markdown: text in a <pre>, in the order the run made them.
    assert '<pre class="artifact-text"># Report\n&lt;script&gt;alert(&#39;md&#39;)' in section
    assert "&lt;b&gt;daily&lt;/b&gt;" in section
    order = [section.index(label) for label in ("report", "sales", "bad-link", "load")]
    assert order == sorted(order)
    # A table: an HTML table of 50 rows, cells escaped, the rest counted.
    table = section[section.index('<table class="artifact-table">') :]
    table = table[: table.index("</table>")]
    assert "<th>region</th><th>sales</th>" in table
    assert table.count("<tr>") == 51  # the header row and 50 rows
    assert table.count("<td>&lt;script&gt;alert(&#39;cell&#39;)&lt;/script&gt;</td>") == 50
    assert "10 more rows" in section
    # Links: only http(s) ones are links; the javascript: one is text.
    assert "javascript:" in section and not re.search(r"href=\"\s*javascript", section)
    assert "&lt;i&gt;click me&lt;/i&gt;" in section and "not an http or https address" in section
    assert '<a href="https://example.com/data.csv?a=1&amp;b=2"' in section
    assert ">the data</a>" in section
    # Progress: its latest value, as a bar and a percentage.
    assert '<progress max="100" value="42.5">' in section and "42.5%" in section


def test_a_run_without_artifacts_has_no_section(
    ui: TestClient, client: Client, tmp_path: Path
) -> None:
    run_id = run_of(client, tmp_path, "quiet")
    page = ui.get(f"/runs/{run_id}").text
    assert "<h1>" in page and "<h2>Artifacts</h2>" not in page


def test_the_api_answers_a_runs_artifacts_in_order(
    ui: TestClient, client: Client, tmp_path: Path
) -> None:
    run_id = run_of(client, tmp_path, "publishes")
    answer = ui.get(f"/api/runs/{run_id[:8]}/artifacts")
    assert answer.status_code == 200
    artifacts = answer.json()["artifacts"]
    assert [a["type"] for a in artifacts] == ["markdown", "table", "link", "link", "progress"]
    assert artifacts[0]["key"] == "report" and "<script>" in artifacts[0]["data"]
    assert len(artifacts[1]["data"]) == 60 and artifacts[1]["data"][59]["sales"] == 59
    assert artifacts[2]["data"] == {
        "link": "javascript:alert('link')",
        "link_text": "<i>click me</i>",
    }
    assert artifacts[4]["data"] == 42.5 and artifacts[4]["flow_run_id"] == run_id
    assert (
        ui.get(f"/api/runs/{run_id}/artifacts", params={"limit": 2}).json()["artifacts"]
        == artifacts[:2]
    )
    assert ui.get("/api/runs/nosuchrun/artifacts").status_code == 404


def test_the_variables_page_and_api_list_variables_escaped(ui: TestClient, client: Client) -> None:
    empty = ui.get("/variables")
    assert empty.status_code == 200 and "No variables" in empty.text
    client.set_variable("crew", ["<script>alert('v')</script>", "arthur"], tags=["<b>team</b>"])
    client.set_variable("long", "x" * 1000)
    answer = ui.get("/variables")
    page = answer.text
    assert answer.status_code == 200 and "content-security-policy" in answer.headers
    assert re.search(r'href="[^"]*/variables" class="current"', page)
    assert "<script>alert" not in page and "<b>team" not in page
    assert "[&#34;&lt;script&gt;alert(&#39;v&#39;)&lt;/script&gt;&#34;,&#34;arthur&#34;]" in page
    assert "&lt;b&gt;team&lt;/b&gt;" in page
    assert "x" * 1000 not in page and "x" * 90 in page  # shortened
    listed = ui.get("/api/variables").json()["variables"]
    assert [v["name"] for v in listed] == ["crew", "long"]
    assert listed[0]["value"] == ["<script>alert('v')</script>", "arthur"]
    assert listed[0]["tags"] == ["<b>team</b>"] and listed[1]["value"] == "x" * 1000
