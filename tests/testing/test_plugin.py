"""The pytest plugin (entry point ``pytest11``): the ``legato_store`` fixture, used
the way users would, in a pytest run of its own; and the README's example file."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "test_etl_kit.py"

USER_TESTS = """
import os
from pathlib import Path

import pytest

from legato import flow, task
from legato.store import get_default_store
from legato.testing import run_flow

SEEN = []


@task
def fetch(i: int) -> int:
    if i == 2:
        raise ValueError("fetch 2 broke")
    return i


@flow
def fetch_some(n: int) -> list[int]:
    return [fetch(i) for i in range(n)]


@pytest.mark.parametrize("round", [1, 2])
def test_each_test_gets_a_fresh_store(legato_store, tmp_path, round):
    assert get_default_store() is legato_store
    assert Path(os.environ["LEGATO_HOME"]).is_relative_to(tmp_path)
    assert legato_store.list_flow_runs(limit=10) == []  # nothing from the other round
    run = run_flow(fetch_some, n=2)
    assert run.result == [0, 1]
    assert [t.call_key for t in run.task_runs] == ["fetch[0]", "fetch[1]"]
    assert legato_store.get_flow_run(run.flow_run.id) is not None
    SEEN.append(run.flow_run.id)


def test_a_failed_flow_does_not_raise(legato_store):
    run = run_flow(fetch_some, n=3)
    assert run.state.is_failed() and run.result is None
    assert run.task_run("fetch[2]").state.value == "failed"
    with pytest.raises(ValueError, match="fetch 2 broke"):
        run.raise_for_state()
    with pytest.raises(KeyError, match="fetch\\\\[0\\\\], fetch\\\\[1\\\\], fetch\\\\[2\\\\]"):
        run.task_run("fetch[9]")
"""


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "legato"]
    assert entry.value == "legato.testing.plugin"


def test_a_users_test_file_gets_the_fixture_without_any_conftest(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=3)


def test_the_fixture_is_gone_when_the_plugin_is_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_it(legato_store):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:legato")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'legato_store' not found*"])


def test_the_readme_example_file_is_the_one_in_examples_and_it_passes(
    pytester: pytest.Pytester,
) -> None:
    text = EXAMPLE.read_text()
    readme = (ROOT / "README.md").read_text()
    assert "```python\n" + text + "```" in readme, "README's testing example != examples/"
    pytester.makepyfile(test_etl_kit=text)
    (pytester.path / "etl.py").write_text((ROOT / "examples" / "etl.py").read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=5)
