"""``legato automation``: apply a YAML file, list, explain, pause, resume, delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

YAML = """
- name: b-after-a
  description: run B when flow A completes
  trigger:
    expect: [legato.flow-run.Completed]
    match_related: {legato.resource.role: flow, legato.resource.id: legato.flow.a}
  actions:
    - type: emit-event
      event: b.requested
      resource: {legato.resource.id: "b.{{ event.resource['legato.resource.id'] }}"}
"""


def test_apply_ls_explain_pause_delete(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "automations.yaml"
    spec.write_text(YAML)
    assert cli("automation", "apply", "-f", str(spec)).stdout == "created automation 'b-after-a'\n"
    assert "updated automation" in cli("automation", "apply", "-f", str(spec)).stdout
    listed = cli("automation", "ls")
    assert "b-after-a  enabled  last fired: never fired" in listed.stdout, listed
    emitted = cli(
        "event", "emit", "legato.flow-run.Completed", "--resource", "legato.resource.id=x"
    )
    assert emitted.code == 0, emitted
    evaluated = cli("automation", "run-evaluator", "--once")
    assert "0 firing(s)" in evaluated.stdout, evaluated
    events = cli("events", "--json").stdout
    event_id = next(
        json.loads(line)["id"] for line in events.splitlines() if "flow-run.Completed" in line
    )
    explained = cli("automation", "explain", "b-after-a", "--event", event_id)
    assert "did not match: no related resource matches match_related" in explained.stdout, explained
    assert cli("automation", "pause", "b-after-a").code == 0
    assert cli("automation", "show", "b-after-a").json()["enabled"] is False
    assert cli("automation", "resume", "b-after-a").code == 0
    assert cli("automation", "delete", "b-after-a").code == 0
    gone = cli("automation", "explain", "b-after-a")
    assert gone.code == 2 and "no automation named 'b-after-a'" in gone.stderr


def test_a_bad_file_says_where_and_saves_nothing(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "automations.yaml"
    spec.write_text(YAML + "- name: broken\n  trigger: {posture: Sideways}\n  actions: []\n")
    refused = cli("automation", "apply", "-f", str(spec))
    assert refused.code == 2
    assert "[1].trigger.posture" in refused.stderr and "[1].actions" in refused.stderr
    assert "no automations" in cli("automation", "ls").stdout
