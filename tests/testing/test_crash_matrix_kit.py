"""legato.testing.crash_matrix on the examples and on flows built to fail it."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections import Counter
from pathlib import Path

import pytest
from _kit_flows import nested, pay, pay_once

from legato import flow, task
from legato.errors import ConfigurationError, CrashMatrixFailed
from legato.states import StateType
from legato.store.base import Store
from legato.testing import crash_matrix, effects

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def etl_flow(monkeypatch: pytest.MonkeyPatch) -> object:
    # Loaded by path under a name of its own: other tests import flow files called
    # etl.py too, and sys.modules would hand this test theirs.
    spec = importlib.util.spec_from_file_location("legato_example_etl", EXAMPLES / "etl.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {EXAMPLES / 'etl.py'}")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "legato_example_etl", module)
    spec.loader.exec_module(module)
    return module.etl


def test_the_etl_example_resumes_cleanly_from_every_boundary(
    legato_store: Store, etl_flow: object, tmp_path: Path
) -> None:
    report = crash_matrix(etl_flow, {"rows_per_file": 5, "out_dir": str(tmp_path)})  # type: ignore[arg-type]
    report.raise_if_failed()
    # make_inputs, 3 extracts, 3 rates, 3 transforms, load: before and after each.
    assert len(report.boundaries) == 2 * 11
    assert {b.when for b in report.boundaries} == {"before_commit", "after_commit"}
    assert report.result["customers"] == 4  # type: ignore[index]


def test_a_side_effect_not_guarded_is_reported_for_each_crash_before_its_commit(
    legato_store: Store,
) -> None:
    report = crash_matrix(pay, {"n": 2})
    assert not report.ok and not report.mismatches and not report.missed
    assert [(str(d.boundary), d.count) for d in report.duplicates] == [
        ("before commit of pay:charge[0]", 2),
        ("before commit of pay:charge[1]", 2),
    ]
    assert all(d.effect[0] == "charge" for d in report.duplicates)  # type: ignore[index]
    with pytest.raises(CrashMatrixFailed) as raised:
        report.raise_if_failed()
    message = str(raised.value)
    assert "crashed before commit of pay:charge[0]: side effect ('charge'" in message
    assert "ran 2 times" in message and "idempotent" in message
    assert isinstance(raised.value, AssertionError)


def test_the_same_side_effect_guarded_by_its_idempotency_key_is_clean(
    legato_store: Store,
) -> None:
    report = crash_matrix(pay_once, {"n": 2})
    assert report.ok, report.describe()
    assert len(report.boundaries) == 4


def test_subflows_are_crashed_at_their_own_boundaries(legato_store: Store) -> None:
    report = crash_matrix(nested, {"n": 1})
    keys = [str(b) for b in report.boundaries]
    assert "before commit of pay:charge[0]" in keys
    assert "after commit of pay_once:charge_once[0]" in keys
    # Only the unguarded charge, crashed before its commit, repeats.
    assert [str(d.boundary) for d in report.duplicates] == ["before commit of pay:charge[0]"]
    assert not report.mismatches


_calls = itertools.count()


@task
def tick() -> int:
    return 1


@flow
def drifting() -> int:
    tick()
    return next(_calls)  # a different result on every execution of the body


def test_a_result_that_changes_on_resume_is_a_mismatch(legato_store: Store) -> None:
    report = crash_matrix(drifting)
    assert len(report.mismatches) == 2
    assert all(m.state is StateType.COMPLETED for m in report.mismatches)
    assert "expected result" in report.describe()


def test_a_custom_effect_counter(legato_store: Store) -> None:
    seen: Counter[str] = Counter()

    @task
    def send(n: int) -> int:
        seen[f"mail-{n}"] += 1
        return n

    @flow
    def mailer() -> int:
        return send(1) + send(2)

    report = crash_matrix(mailer, effects=lambda: seen)
    assert [(str(d.boundary), d.effect) for d in report.duplicates] == [
        ("before commit of mailer:send[0]", "mail-1"),
        ("before commit of mailer:send[1]", "mail-2"),
    ]
    assert effects.read() == []  # the built-in recorder was not involved


def test_a_flow_that_does_not_complete_is_refused(legato_store: Store) -> None:
    @flow
    def broken() -> None:
        raise RuntimeError("nope")

    with pytest.raises(ConfigurationError, match="ended failed"):
        crash_matrix(broken)


def test_importing_the_kit_does_not_import_pytest() -> None:
    import subprocess

    code = "import sys, legato.testing; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
