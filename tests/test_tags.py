"""The `tags` context manager: runs and task runs created inside carry its tags."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from _waiting import wait_until
from legato import flow, tags, task
from legato.client import Client
from legato.engine.limits import forget_known_limits, limit_waiters
from legato.errors import ConfigurationError
from legato.states import StateType
from legato.store import get_default_store


@task(tags=["own"])
def tagged_step(x: int) -> int:
    return x + 1


@task
def plain_step(x: int) -> int:
    return x * 2


@flow(tags=["nightly"])
def tagged_flow(x: int = 1) -> int:
    with tags("inner"):
        doubled = plain_step(x)
    return tagged_step(doubled) + plain_step.submit(x).result()


def test_runs_and_task_runs_created_inside_carry_the_tags(legato_home: Path) -> None:
    with tags("etl", "prod") as current:
        assert current == {"etl", "prod"}
        assert tagged_flow(2) == 9
    client = Client()
    [run] = client.list_runs(tag="etl")
    assert run.tags == ("nightly", "etl", "prod")
    assert [r.id for r in client.list_runs(tag="prod")] == [run.id]
    by_name = {(t.task_name, t.tags) for t in client.task_runs(run.id)}
    assert by_name == {
        ("plain_step", ("etl", "prod", "inner")),  # nested blocks add up
        ("tagged_step", ("own", "etl", "prod")),
        ("plain_step", ("etl", "prod")),  # submitted: tagged where it was created
    }


def test_tags_end_with_their_block(legato_home: Path) -> None:
    with tags("once"):
        pass
    assert tagged_flow(1) == 5
    [run] = Client().list_runs()
    assert run.tags == ("nightly",)
    assert not Client().list_runs(tag="once")
    assert {t.tags for t in Client().task_runs(run.id)} == {("own",), (), ("inner",)}


def test_tag_names_must_be_strings() -> None:
    with pytest.raises(ConfigurationError, match="tag names as strings"):
        tags(["a", "b"]).__enter__()  # type: ignore[arg-type]


@task
def untagged_query() -> int:
    return 1


@flow
def querying_flow() -> int:
    with tags("db-held"):
        return untagged_query()


def test_a_limit_named_by_a_block_tag_applies_to_the_task(legato_home: Path) -> None:
    client = Client()
    client.set_limit("db-held", 0)  # no slot: a task counted against it waits
    forget_known_limits()
    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(querying_flow(return_state=True)))
    runner.start()
    waiters = limit_waiters(get_default_store()).shared
    wait_until(lambda: waiters.waiters == 1, what="the task to wait for a 'db-held' slot")
    [run] = client.list_runs(states=[StateType.RUNNING])
    client.cancel_run(run.id)
    runner.join(30)
    assert result and result[0].type is StateType.CANCELLED  # type: ignore[attr-defined]
    [task_run] = client.task_runs(run.id)
    assert task_run.tags == ("db-held",)


def test_legato_runs_lists_the_runs_carrying_a_tag(tmp_path: Path) -> None:
    script = tmp_path / "tagged.py"
    script.write_text(
        "from legato import flow, tags\n\n"
        "@flow\ndef plain() -> int:\n    return 1\n\n"
        "@flow\ndef main() -> int:\n"
        "    with tags('nightly'):\n        return plain() + plain()\n"
    )
    legato = [sys.executable, "-m", "legato"]
    done = subprocess.run([*legato, "run", f"{script}:main"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [*legato, "runs", "--tag", "nightly", "--json"], capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [r["flow"] for r in runs] == ["plain", "plain"]


@task(tags=["own"])
def reads_its_tags() -> list[str]:
    import legato.runtime.task_run

    return sorted(legato.runtime.task_run.tags)


@flow
def tagged_runtime() -> list[str]:
    with tags("block"):
        return reads_its_tags()


def test_runtime_task_run_tags_include_the_blocks_tags() -> None:
    assert tagged_runtime() == ["block", "own"]
