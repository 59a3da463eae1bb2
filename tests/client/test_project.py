"""Deployments declared in legato.yaml: all checked first, then stored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from legato.client import Client
from legato.errors import ConfigurationError

FLOWS = """
from legato import flow


@flow
def etl(day: str, limit: int = 10) -> str:
    return day


@flow
def report() -> None:
    pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "jobs.py").write_text(FLOWS)
    return tmp_path


def write(project: Path, text: str) -> Path:
    path = project / "legato.yaml"
    path.write_text(text)
    return path


def test_every_deployment_of_the_file_is_stored(project: Path) -> None:
    path = write(
        project,
        """
deployments:
  - name: nightly-etl
    entrypoint: flows/jobs.py:etl
    cron: "0 2 * * *"
    timezone: Europe/Paris
    parameters: {day: yesterday}
    concurrency_limit: 1
    tags: [etl]
  - name: reports
    entrypoint: flows/jobs.py:report
    schedules:
      - {cron: "0 8 * * MON", timezone: America/New_York}
      - {interval: 86400}
    work_queue: reports
""",
    )
    deployed = Client().deploy_project(path)
    assert [d.name for d in deployed] == ["nightly-etl", "reports"]
    etl = Client().get_deployment("nightly-etl")
    assert etl.entrypoint == f"{project.resolve()}/flows/jobs.py:etl"
    assert etl.schedules[0].cron == "0 2 * * *" and etl.schedules[0].timezone == "Europe/Paris"
    assert etl.parameters == {"day": "yesterday"} and etl.concurrency_limit == 1
    reports = Client().get_deployment("reports")
    assert [(s.cron, s.interval, s.timezone) for s in reports.schedules] == [
        ("0 8 * * MON", None, "America/New_York"),
        (None, 86400, "UTC"),
    ]
    assert reports.work_queue == "reports"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deployments: [\n", "not valid YAML"),
        ("deployments:\n  - name: x\n", "deployments.1.entrypoint: Field required"),
        (
            "deployments:\n  - {name: x, entrypoint: flows/jobs.py:report, colour: red}\n",
            "deployments.1.colour: Extra inputs are not permitted",
        ),
        (
            "deployments:\n  - {name: x, entrypoint: flows/jobs.py:report, cron: 'bad'}\n",
            "deployments.1 (x): invalid cron expression",
        ),
        (
            "deployments:\n  - {name: x, entrypoint: flows/jobs.py:etl, interval: 60}\n",
            "'day' is required but missing",
        ),
        (
            "deployments:\n  - {name: x, entrypoint: flows/jobs.py:nope}\n",
            "has no attribute 'nope'",
        ),
        (
            "deployments:\n  - {name: x, entrypoint: flows/jobs.py:report}\n"
            "  - {name: x, entrypoint: flows/jobs.py:report}\n",
            "used twice: x",
        ),
        # Numbers past what a store column holds, found before the good one is stored.
        (
            "deployments:\n  - {name: x, entrypoint: flows/jobs.py:report, "
            "priority: 99999999999999999999}\n",
            "deployments.1 (x): the priority of deployment 'x' must be a whole number",
        ),
        (
            "deployments:\n  - {name: x, entrypoint: flows/jobs.py:report, interval: 1e20}\n",
            "deployments.1 (x): invalid interval 1e+20",
        ),
    ],
)
def test_a_mistake_anywhere_stores_nothing_and_says_where(
    project: Path, text: str, message: str
) -> None:
    good = "deployments:\n  - {name: good, entrypoint: flows/jobs.py:report}\n"
    path = write(project, good + text.removeprefix("deployments:\n"))
    if text.startswith("deployments: ["):
        path = write(project, text)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Client().deploy_project(path)
    assert Client().deployments() == []  # not even the good one


def test_a_missing_file_says_how_to_make_one(project: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read .*legato\.yaml"):
        Client().deploy_project(project / "legato.yaml")
