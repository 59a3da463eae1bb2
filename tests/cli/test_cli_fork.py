"""``legato fork RUN --from KEY``: a new run that replays the steps before KEY."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

FLOWS = """
import os
from pathlib import Path

from legato import ai, flow
from legato.ai.testing import FakeModel

# Each process numbers the requests it asks: a replayed answer keeps its number.
fake = FakeModel.returning(lambda request: f"answer {len(fake.requests)}")
STYLE = Path(os.environ["FLOW_STATE_DIR"]) / "style"


@flow
def chain(topic: str) -> list:
    style = STYLE.read_text() if STYLE.exists() else "plainly"
    ask = ai.Prompt("ask", "Step {n} about {topic}, " + style)
    return [ai.call(fake, ask(n=n, topic=topic)).output for n in range(4)]
"""


def test_a_fork_replays_the_calls_before_the_key_and_asks_the_rest(cli: Cli) -> None:
    (cli.flows_dir / "flows.py").write_text(FLOWS)
    source = cli.run_json("chain", "-p", "topic=printers")
    assert source["result"] == ["answer 1", "answer 2", "answer 3", "answer 4"]
    (cli.state_dir / "style").write_text("in verse")  # a new prompt version from here on

    result = cli("fork", source["id"][:8], "--from", "llm[2]", "--json")
    assert result.code == 0, str(result)
    fork = result.json()
    assert fork["id"] != source["id"] and fork["state"] == "completed"
    assert fork["parameters"] == {"topic": "printers"}
    assert f"forked-from:{source['id']}" in fork["tags"]
    # llm[0], llm[1] replayed from the source; llm[2], llm[3] asked again in this process.
    assert fork["result"] == ["answer 1", "answer 2", "answer 1", "answer 2"]
    assert cli("prompts", "ls", "--json").json()[0]["versions"] == 2
    logs = cli("logs", fork["id"]).stdout
    assert f"forked from flow run {source['id']} at 'llm[2]'" in logs

    plain = cli("fork", source["id"], "--from", "llm[3]")
    assert plain.code == 0, str(plain)
    assert plain.stdout.startswith("flow run ")
    assert f"forks {source['id']} from 'llm[3]'" in plain.stdout
    assert "completed" in plain.stdout

    unknown = cli("fork", source["id"], "--from", "llm[9]")
    assert unknown.code == 2 and len(unknown.stderr.splitlines()) == 1
    assert "has no step at 'llm[9]' (it recorded llm[0], llm[1], llm[2], llm[3])" in unknown.stderr
    queued = cli("fork", source["id"], "--from", "llm[1]", "--queue")
    assert queued.code == 2 and "started in a terminal" in queued.stderr
    assert len(cli("runs", "--json").json()) == 3
