"""examples/support_triage.py runs end to end offline, and against an
OpenAI-compatible endpoint when OPENAI_BASE_URL is set (a real local server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from openai_server import Answer, openai_server

from legato.states import StateType
from legato.store import get_default_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_triage.py"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    full.update(TRIAGE_OUTBOX=str(tmp_path / "outbox.jsonl"), **env)
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env=full,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _outbox(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_offline_the_run_pauses_for_approval_then_sends_once(tmp_path: Path) -> None:
    done = _run(tmp_path, "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "paused" in done.stdout and "completed: sent reply to T-1042" in done.stdout
    (sent,) = _outbox(tmp_path)
    assert sent["ticket"] == "T-1042" and sent["reply"].startswith("Hi!")
    store = get_default_store()
    (run,) = store.list_flow_runs()
    assert run.state is StateType.COMPLETED
    calls = store.list_llm_calls(run.id)
    assert [(c.call_key, c.prompt_name) for c in calls] == [
        ("llm[0]", "triage-classify"),
        ("llm[1]", "triage-draft"),
    ]
    assert all(c.cost_usd and c.cost_usd > 0 for c in calls)
    assert {p.name for p in store.list_prompts()} == {"triage-classify", "triage-draft"}


def test_against_an_openai_compatible_endpoint(tmp_path: Path) -> None:
    classification = json.dumps({"category": "bug", "urgency": "high", "summary": "export down"})
    script = [
        Answer.reply("not json at all"),  # fails validation: fed back, asked again
        Answer.reply(classification),
        Answer.reply("Sorry about that! A fix ships today."),
    ]
    with openai_server(script) as server:
        done = _run(
            tmp_path,
            "--auto-approve",
            OPENAI_BASE_URL=server.base_url,
            OPENAI_API_KEY="test-key",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(server.requests) == 3
        assert server.requests[0]["model"] == "gpt-4o-mini"
        assert server.requests[0]["response_format"]["type"] == "json_schema"
        assert "not valid" in server.requests[1]["messages"][-1]["content"]
    (sent,) = _outbox(tmp_path)
    assert sent["reply"] == "Sorry about that! A fix ships today."
    store = get_default_store()
    (run,) = store.list_flow_runs()
    tries = [(c.call_key, c.try_number, c.outcome.value) for c in store.list_llm_calls(run.id)]
    assert tries == [("llm[0]", 1, "invalid"), ("llm[0]", 2, "ok"), ("llm[1]", 1, "ok")]
