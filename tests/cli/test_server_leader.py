"""``legato server`` leads the store when no worker does: automations, sweeps and
notifications need no `legato worker`."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from _waiting import wait_until

if TYPE_CHECKING:
    from conftest import Cli

YAML = """
- name: ping-pong
  trigger:
    expect: [ping.sent]
  actions:
    - type: emit-event
      event: pong.sent
      resource: {legato.resource.id: "pong.{{ event.resource['legato.resource.id'] }}"}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def events_named(cli: Cli, name: str) -> list[dict[str, object]]:
    found = cli("events", "--json", "--name", name)
    assert found.code == 0, found
    return [json.loads(line) for line in found.stdout.splitlines() if line.strip()]


def test_a_server_alone_evaluates_automations(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "automations.yaml"
    spec.write_text(YAML)
    assert cli("automation", "apply", "-f", str(spec)).code == 0
    server = cli.popen("server", "--port", str(free_port()))
    try:
        assert cli("event", "emit", "ping.sent", "--resource", "legato.resource.id=p1").code == 0
        wait_until(
            lambda: events_named(cli, "pong.sent"),
            timeout=60,
            interval=0.2,
            what="the server's evaluator to answer ping with pong",
        )
        [pong] = events_named(cli, "pong.sent")
        assert pong["resource"] == {"legato.resource.id": "pong.p1"}
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "leading the scheduler" in err
