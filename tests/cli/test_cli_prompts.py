"""``legato prompts ls | show | diff`` on the versions model calls stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

FLOWS = """
from legato import ai, flow
from legato.ai.testing import FakeModel
from legato.records import utcnow
from legato.store import get_default_store

fake = FakeModel.returning(lambda request: "ok")


@flow
def ask(style: str) -> str:
    prompt = ai.Prompt("triage", "Classify this ticket\\n{ticket}\\n" + style, system="Be brief.")
    return ai.call(fake, prompt(ticket="printer on fire")).output


@flow
def twins() -> None:
    # Two versions sharing a prefix, as only chance (or this) makes them.
    for version in ("abcd1111", "abcd2222"):
        get_default_store().save_prompt("twins", "text " + version, version, now=utcnow())
"""


def test_prompts_are_listed_shown_and_diffed(cli: Cli) -> None:
    flows = cli.flows_dir / "ai_flows.py"
    flows.write_text(FLOWS)
    assert cli("prompts", "ls").stdout.startswith("no prompts")
    for style in ("Answer in one word.", "Answer in one line."):
        result = cli("run", f"{flows}:ask", "-p", f"style={style}", "--json")
        assert result.code == 0, str(result)

    listed = cli("prompts", "ls", "--json").json()
    assert [(p["name"], p["versions"]) for p in listed] == [("triage", 2)]
    newest = listed[0]["latest_version"]
    table = cli("prompts", "ls").stdout
    assert "triage" in table and newest in table

    shown = cli("prompts", "show", "triage", "--json").json()
    assert shown["version"] == newest and shown["system"] == "Be brief."
    assert shown["template"].endswith("Answer in one line.")
    oldest = shown["versions"][1]["version"]
    text = cli("prompts", "show", "triage", "--version", oldest[:5])
    assert text.code == 0, str(text)
    assert f"prompt triage version {oldest}\n" in text.stdout
    assert "template:\nClassify this ticket\n{ticket}\nAnswer in one word.\n" in text.stdout
    assert "system:\nBe brief.\n" in text.stdout

    diff = cli("prompts", "diff", "triage", oldest[:6], newest)
    assert diff.code == 0, str(diff)
    lines = diff.stdout.splitlines()
    assert f"--- template {oldest}" in lines and f"+++ template {newest}" in lines
    assert "-Answer in one word." in lines and "+Answer in one line." in lines
    assert " Classify this ticket" in lines and not any("system" in line for line in lines)

    missing = cli("prompts", "show", "nope")
    assert missing.code == 1 and missing.stdout == ""
    assert missing.stderr == (
        "error: no prompt named 'nope' is stored; list prompts with `legato prompts ls`\n"
    )
    no_version = cli("prompts", "diff", "triage", oldest, "ffffff")
    assert no_version.code == 1 and "prompt 'triage' has no version 'ffffff'" in no_version.stderr

    assert cli("run", f"{flows}:twins").code == 0
    ambiguous = cli("prompts", "show", "twins", "--version", "abcd")
    assert ambiguous.code == 2 and len(ambiguous.stderr.splitlines()) == 1
    assert "version prefix 'abcd' is ambiguous (matches abcd" in ambiguous.stderr
