"""`legato.Deadline`: checked, given by `@flow(deadlines=...)`, `legato deploy
--deadline` and `deadlines:` in legato.yaml, and stored with each run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from legato import Deadline, flow
from legato.client import Client
from legato.deadlines import parse_deadline
from legato.errors import ConfigurationError

CMD = [sys.executable, "-m", "legato"]
FLOWS = textwrap.dedent(
    """
    from datetime import timedelta

    from legato import Deadline, flow


    @flow(deadlines=[Deadline(within=timedelta(hours=2), reference="started")])
    def guarded(n: int = 1) -> int:
        return n


    @flow
    def plain(n: int = 1) -> int:
        return n
    """
)


@pytest.fixture
def flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "deadline_flows.py"
    path.write_text(FLOWS)
    return path


def test_deadline_checks() -> None:
    with pytest.raises(ConfigurationError, match="positive timedelta"):
        Deadline(within=timedelta(0))
    with pytest.raises(ConfigurationError, match="reference"):
        Deadline(within=timedelta(1), reference="ended")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="action"):
        Deadline(within=timedelta(1), action="page")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"legato\.Deadline"):
        flow(deadlines=["1h"])(lambda: None)


def test_parse_deadline() -> None:
    assert parse_deadline("1h") == Deadline(within=timedelta(hours=1))
    assert parse_deadline("30m:started:cancel") == Deadline(
        within=timedelta(minutes=30), reference="started", action="cancel"
    )
    assert parse_deadline("1.5d:cancel") == Deadline(within=timedelta(days=1.5), action="cancel")
    for bad in ("", "1", "1y", "1h:soon", "1h:started:cancel:x", "-1h"):
        with pytest.raises(ConfigurationError, match="deadline"):
            parse_deadline(bad)


def test_a_deployment_gives_its_deadlines_to_each_run(flows_file: Path) -> None:
    client = Client()
    deployment = client.deploy(
        f"{flows_file}:plain",
        name="strict",
        deadlines=[Deadline(within=timedelta(minutes=10), action="cancel")],
    )
    assert client.get_deployment("strict").deadlines == deployment.deadlines
    run = client.trigger("strict")
    [stored] = client.store.list_run_deadlines(run.id)
    assert (stored.reference, stored.action, stored.within_seconds) == ("scheduled", "cancel", 600)
    assert stored.due_at == (run.scheduled_time or run.created) + timedelta(minutes=10)
    # Without deadlines of its own, a deployment takes its flow's.
    client.deploy(f"{flows_file}:guarded", name="from-flow")
    guarded_run = client.trigger("from-flow")
    [own] = client.store.list_run_deadlines(guarded_run.id)
    assert (own.reference, own.due_at) == ("started", None)  # armed when it starts


def test_legato_deploy_deadline_option(flows_file: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "legato",
            "deploy",
            f"{flows_file}:plain",
            "--name",
            "cli-strict",
            "--deadline",
            "1h",
            "--deadline",
            "20m:started:cancel",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["deadlines"] == [
        {"within_seconds": 3600.0, "reference": "scheduled", "action": "alert"},
        {"within_seconds": 1200.0, "reference": "started", "action": "cancel"},
    ]
    bad = subprocess.run(
        [*CMD, "deploy", f"{flows_file}:plain", "--name", "x", "--deadline", "soon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "deadline 'soon'" in bad.stderr


def test_deadlines_in_legato_yaml(flows_file: Path, tmp_path: Path) -> None:
    project = tmp_path / "legato.yaml"
    project.write_text(
        textwrap.dedent(
            f"""
            deployments:
              - name: yaml-strict
                entrypoint: {flows_file.name}:plain
                deadlines: ["2h", "15m:started"]
              - name: yaml-default
                entrypoint: {flows_file.name}:guarded
            """
        )
    )
    client = Client()
    client.deploy_project(project)
    assert client.get_deployment("yaml-strict").deadlines == (
        Deadline(within=timedelta(hours=2)),
        Deadline(within=timedelta(minutes=15), reference="started"),
    )
    assert client.get_deployment("yaml-default").deadlines == (
        Deadline(within=timedelta(hours=2), reference="started"),
    )
    project.write_text(
        f"deployments:\n  - name: bad\n    entrypoint: {flows_file.name}:plain\n"
        f"    deadlines: ['1w']\n"
    )
    with pytest.raises(ConfigurationError, match=r"deployments\.0 \(bad\): deadline '1w'"):
        client.deploy_project(project)
