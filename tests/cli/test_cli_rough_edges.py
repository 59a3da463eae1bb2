"""What a new user met (issue 11): cut table values that did not look cut, import
errors without a line, the resume hint and word, `show` at 80 columns, and where
the ETL example writes."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from legato.cli.render import format_parameters
from legato.cli.tables import PARAMETERS_LIMIT, print_trimmed, runs_table
from legato.records import FlowRun
from legato.states import StateType

if TYPE_CHECKING:  # conftest is not importable as a module; only its type is used
    from conftest import Cli

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def looks_whole_or_cut(value: str, line: str) -> bool:
    """``value`` is on the line whole, or a prefix of it followed by "…"."""
    return value in line or any(value[:k] + "…" in line for k in range(1, len(value)))


# --- legato runs ----------------------------------------------------------------------


def table_runs() -> list[FlowRun]:
    def run(i: int, flow: str, state: StateType, params: dict[str, object]) -> FlowRun:
        return FlowRun(
            id=f"{i:02d}" + "ab" * 15,
            flow_name=flow,
            name=f"{flow}-{i:02d}ababab",
            state=state,
            parameters=params,
            start_time=T0,
            end_time=T0 + timedelta(seconds=2.5),
            attempts=1,
        )

    return [
        run(1, "etl", StateType.PAUSED, {"min_amount": 20.0}),
        run(2, "a_rather_long_flow_name_indeed", StateType.COMPLETED, {"region": "eu" * 30}),
        run(3, "report", StateType.CANCELLED, {"min_amount": 20.0, "rows_per_file": 50}),
    ]


@pytest.mark.parametrize("width", [40, 60, 72, 80, 100, 120, 200])
def test_runs_table_fits_and_never_cuts_a_value_silently(width: int) -> None:
    runs = table_runs()
    console = Console(file=io.StringIO(), width=width, color_system=None)
    print_trimmed(console, runs_table(runs, width))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == len(runs) + 1, lines  # one line per run: nothing wraps
    for run, line in zip(runs, lines[1:], strict=True):
        assert len(line) <= width and line == line.rstrip(), line
        assert line.startswith(run.id[:8])
        assert f"  {run.state.value}" in line  # the state is never cut
        assert looks_whole_or_cut(run.flow_name, line), line
        if "PARAMETERS" in lines[0]:
            assert looks_whole_or_cut(format_parameters(run.parameters, PARAMETERS_LIMIT), line), (
                line
            )
    if width >= 80:
        assert "PARAMETERS" in lines[0] and "DURATION" in lines[0]
    if width >= 200:
        assert "min_amount=20.0, rows_per_file=50" in lines[3]


def test_runs_in_a_pipe_at_80_columns(cli: Cli) -> None:
    paused = cli.run_json("approval_flow", expect=3)["id"]
    long_label = "a-label-long-enough-to-be-cut-in-a-table"
    done = cli.run_json("greet", "-p", "n=20", "-p", f"label={long_label}")["id"]

    narrow = cli("runs", COLUMNS="80")
    assert narrow.code == 0, str(narrow)
    lines = narrow.stdout.splitlines()
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines), narrow.stdout
    by_id = {line[:8]: line for line in lines[1:]}
    assert "  paused" in by_id[paused[:8]] and "  completed" in by_id[done[:8]]
    greet_params = format_parameters({"n": 20, "names": None, "label": long_label}, 200)
    assert greet_params not in by_id[done[:8]]  # too long for 80 columns, so...
    assert looks_whole_or_cut(greet_params, by_id[done[:8]])  # ...it ends in "…"

    wide = cli("runs", COLUMNS="200")
    assert wide.code == 0, str(wide)
    assert greet_params in wide.stdout
    assert all(line == line.rstrip() for line in wide.stdout.splitlines())


# --- errors while importing a flow file ------------------------------------------------


@pytest.mark.parametrize(
    ("source", "where", "what"),
    [
        (
            "from legato import flow\n\ndef helper():\n    raise ValueError('bad config')\n\n"
            "helper()\n\n@flow\ndef f() -> None:\n    pass\n",
            "broken.py:4",
            "ValueError: bad config",
        ),
        ("from legato import flow\nx = (\n", "broken.py:2", "SyntaxError: '(' was never closed"),
    ],
)
def test_import_error_names_the_file_and_line(cli: Cli, source: str, where: str, what: str) -> None:
    (cli.flows_dir / "broken.py").write_text(source)
    result = cli("run", "broken.py:f")
    assert result.code == 2, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"at {where}: {what}" in lines[0], lines[0]


# --- legato resume ----------------------------------------------------------------------


def test_resume_without_input_tells_required_from_optional_fields(cli: Cli) -> None:
    run_id = cli.run_json("approval_flow", expect=3)["id"]
    missing = cli("resume", run_id)
    assert missing.code == 2, str(missing)
    assert "required fields: approved; optional: note" in missing.stderr, missing.stderr


def test_resume_says_resumed(cli: Cli) -> None:
    run_id = cli.run_json("fragile", expect=1)["id"]
    (cli.state_dir / "fixed").touch()
    result = cli("resume", run_id)
    assert result.code == 0, str(result)
    first = result.stdout.splitlines()[0]
    assert first == f"run {run_id} resumed (flow fragile)", result.stdout
    assert "started" not in result.stdout


# --- legato show --------------------------------------------------------------------------


def test_show_at_80_columns_has_one_header_line_and_no_trailing_spaces(cli: Cli) -> None:
    run_id = cli.run_json("approval_flow", expect=3)["id"]
    result = cli("show", run_id, COLUMNS="80")
    assert result.code == 0, str(result)
    lines = result.stdout.splitlines()
    assert all(line == line.rstrip() for line in lines), result.stdout
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert lines[0].startswith(f"flow run {run_id}  paused  attempts 1"), result.stdout
    assert re.search(rf"flow: approval_flow / \S+{run_id[:8]}$", lines[1]), result.stdout
    assert "resume with: legato resume" in result.stdout


# --- the ETL example and the README's "Try it" ---------------------------------------


def try_it_command() -> str:
    """The README's one-line "Try it", from after the install to the end."""
    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if "legato run examples/etl.py:etl" in ln)
    return line[line.index("legato run examples/etl.py:etl") :]


def test_readme_try_it_writes_the_etl_output_to_the_current_folder(tmp_path: Path) -> None:
    here = tmp_path / "here"
    (here / "examples").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "etl.py", here / "examples" / "etl.py")
    home = tmp_path / "home"
    env = dict(os.environ)
    env.pop("LEGATO_DATABASE_URL", None)
    env.update(
        LEGATO_HOME=str(home),
        COLUMNS="100",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    proc = subprocess.run(
        ["bash", "-c", f"set -e -o pipefail; {try_it_command()}"],
        cwd=here,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    written = here / "revenue_by_customer.json"
    totals = json.loads(written.read_text())
    assert len(totals) == 7
    assert not list(home.glob("**/revenue_by_customer.json"))
    # The path is said up front, before any task ran, and the tree of `show` follows.
    assert f"writing {written}" in out
    assert out.index(f"writing {written}") < out.index("read 50 rows")
    assert "exchange_rate[0]  completed  attempts 2" in proc.stdout
