"""``legato artifacts``: what runs published, listed by key or run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

REPORTS = """
from legato import flow, task
from legato.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact


@task
def table() -> None:
    create_table_artifact([{"region": "eu", "sales": 12}, {"region": "us", "sales": 7}],
                          key="sales", description="sales by region")


@flow
def report() -> None:
    create_markdown_artifact("# Daily report\\n\\nAll good.", key="daily-report")
    table()
    create_link_artifact("https://example.com/data.csv", link_text="the data")
"""


def test_artifacts_are_listed_by_key_and_by_run(cli: Cli) -> None:
    path = cli.flows_dir / "reports.py"
    path.write_text(REPORTS)
    assert cli("artifacts").stdout == "no artifacts\n"
    ran = cli("run", f"{path}:report", "--json")
    assert ran.code == 0, str(ran)
    run_id = ran.json()["id"]
    assert cli("run", f"{path}:report").code == 0  # a second run, newer

    newest_first = cli("artifacts", "--json").json()
    assert [a["type"] for a in newest_first] == ["link", "table", "markdown"] * 2
    assert newest_first[-1]["flow_run_id"] == run_id

    of_run = cli("artifacts", "--run", run_id[:12], "--json").json()
    assert [(a["type"], a["key"]) for a in of_run] == [
        ("markdown", "daily-report"),
        ("table", "sales"),
        ("link", None),
    ]
    assert of_run[1]["data"] == [{"region": "eu", "sales": 12}, {"region": "us", "sales": 7}]
    assert of_run[1]["task_run_id"] is not None and of_run[0]["task_run_id"] is None

    by_key = cli("artifacts", "--key", "sales", "--json").json()
    assert len(by_key) == 2 and {a["key"] for a in by_key} == {"sales"}

    table = cli("artifacts", "--run", run_id).stdout
    assert "markdown: # Daily report" in table
    assert "table: 2 row(s)" in table and "sales by region" in table
    assert "link: the data <https://example.com/data.csv>" in table


def test_show_lists_the_artifacts_of_the_run(cli: Cli) -> None:
    path = cli.flows_dir / "reports.py"
    path.write_text(REPORTS)
    ran = cli("run", f"{path}:report", "--json")
    assert ran.code == 0, str(ran)
    run_id = ran.json()["id"]
    shown = cli("show", run_id).stdout
    after = shown.split("artifacts:\n", 1)[1].splitlines()
    assert after[0].strip().startswith("daily-report  markdown: # Daily report")
    assert after[1].strip().startswith("sales  table: 2 row(s)")
    assert "link: the data <https://example.com/data.csv>" in after[2]
    data = cli("show", run_id, "--json").json()
    assert [(a["type"], a["key"]) for a in data["artifacts"]] == [
        ("markdown", "daily-report"),
        ("table", "sales"),
        ("link", None),
    ]


PROGRESS = """
from legato import flow
from legato.artifacts import create_progress_artifact, update_progress_artifact


@flow
def load() -> None:
    made = create_progress_artifact(0, key="rows", description="rows loaded")
    update_progress_artifact(made, 40)
"""


def test_progress_artifacts_are_shown_as_a_percentage(cli: Cli) -> None:
    path = cli.flows_dir / "progress.py"
    path.write_text(PROGRESS)
    ran = cli("run", f"{path}:load", "--json")
    assert ran.code == 0, str(ran)
    run_id = ran.json()["id"]
    listed = cli("artifacts", "--run", run_id).stdout
    assert "progress: 40%" in listed and "rows loaded" in listed
    assert cli("artifacts", "--json").json()[0]["data"] == 40.0
    shown = cli("show", run_id).stdout
    assert shown.split("artifacts:\n", 1)[1].strip().startswith("rows  progress: 40%")
