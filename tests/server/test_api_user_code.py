"""The server never imports or runs a flow's code (issue 10, item 10).

Deployments whose modules kill the process or write a file at import are
created, shown and triggered through a real `legato server`: it stays up and
nothing is written. Parameter schemas come from what a deploy that loaded the
code recorded; a deployment made through the API without one has its run's
parameters checked by the worker that runs it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from _waiting import wait_until
from legato.client import Client
from legato.engine.calls import execute_claimed_run
from legato.engine.liveness import current_owner
from legato.records import utcnow
from legato.server import create_app
from legato.server.ui.forms import FIELD_PREFIX
from legato.states import StateType

EXITS = """
import os

from legato import flow

os._exit(7)


@flow
def etl(n: int = 1) -> int:
    return n
"""

MARKS = """
from pathlib import Path

from legato import flow

Path({marker!r}).write_text("imported by pid " + str(__import__("os").getpid()))


@flow
def etl(n: int, label: str = "x") -> int:
    return n
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    env = {k: v for k, v in os.environ.items() if k != "LEGATO_API_TOKEN"}
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "legato", "server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/api/health", timeout=2).status_code == 200
        except httpx.TransportError:
            assert process.poll() is None, "the server exited while starting"
            return False

    try:
        wait_until(answers, timeout=30, interval=0.1, what="the server to answer")
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_the_server_never_imports_a_deployments_code(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base, process = server
    exits = tmp_path / "exits.py"
    exits.write_text(EXITS)
    marker = tmp_path / "imported.txt"
    marks = tmp_path / "marks.py"
    marks.write_text(MARKS.format(marker=str(marker)))
    with httpx.Client(base_url=base, timeout=30) as http:
        _check_without_importing(http, process, exits, marks, marker)


def _check_without_importing(
    http: httpx.Client, process: subprocess.Popen[str], exits: Path, marks: Path, marker: Path
) -> None:
    for name, path in (("exiting", exits), ("marking", marks)):
        created = http.put(f"/api/deployments/{name}", json={"entrypoint": f"{path}:etl"})
        assert created.status_code == 200, created.text
        assert created.json()["flow"] == "etl"
        shown = http.get(f"/api/deployments/{name}")
        assert shown.status_code == 200 and shown.json()["parameter_schema"] is None
        assert "worker" in shown.json()["parameter_schema_error"]
        assert http.get(f"/deployments/{name}").status_code == 200  # the UI's page
        assert http.head(f"/api/deployments/{name}").status_code == 200
        # No schema recorded: the run is queued, its parameters left to the worker.
        queued = http.post(f"/api/deployments/{name}/trigger", json={"parameters": {"n": 2}})
        assert queued.status_code == 200 and queued.json()["state"] == "scheduled"
    assert len(http.get("/api/deployments").json()) == 2
    assert http.get("/").status_code == 200 and http.get("/api/health").status_code == 200
    assert process.poll() is None, "the server exited"
    assert not marker.exists(), marker.read_text()

    # A deploy from the user's own process (here: this test) loads the code and
    # records the schema; the server checks triggers against it, still without
    # importing anything.
    Client().deploy(f"{marks}:etl", name="recorded", parameters={"label": "y"})
    marker.unlink()
    schema = http.get("/api/deployments/recorded").json()["parameter_schema"]
    assert list(schema["properties"]) == ["n", "label"]
    assert schema["properties"]["label"]["default"] == "y" and schema["required"] == ["n"]
    assert f'name="{FIELD_PREFIX}n"' in http.get("/deployments/recorded").text  # run-now form
    for parameters, named in (({"n": "many"}, "'n'"), ({"n": 1, "oops": 1}, "'oops'")):
        wrong = http.post("/api/deployments/recorded/trigger", json={"parameters": parameters})
        assert wrong.status_code == 422 and named in " ".join(wrong.json()["problems"])
    missing = http.post("/api/deployments/recorded/trigger", json={})
    assert missing.status_code == 422 and "'n' is required" in missing.json()["detail"]
    good = http.post("/api/deployments/recorded/trigger", json={"parameters": {"n": 3}})
    assert good.status_code == 200 and good.json()["parameters"] == {"label": "y", "n": 3}
    assert process.poll() is None and not marker.exists()


@pytest.mark.usefixtures("backend")
def test_a_run_of_a_deployment_without_a_schema_is_checked_by_its_worker(
    tmp_path: Path,
) -> None:
    flows = tmp_path / "typed.py"
    flows.write_text(
        "from legato import flow\n\n\n@flow\ndef etl(n: int) -> int:\n    return n * 2\n"
    )
    client = Client()
    with TestClient(create_app(client)) as api:
        body = {"entrypoint": f"{flows}:etl", "parameters": {"n": "many"}}
        assert api.put("/api/deployments/typed", json=body).status_code == 200
        run_id = api.post("/api/deployments/typed/trigger").json()["id"]
        fine = api.post("/api/deployments/typed/trigger", json={"parameters": {"n": 4}}).json()
    for expected in (run_id, fine["id"]):
        claim = client.store.claim_flow_run(
            ["default"], current_owner("tok"), now=utcnow(), lease_seconds=30
        )
        assert claim is not None and claim.id == expected
        if expected == run_id:
            with pytest.raises(Exception, match="'n'"):
                execute_claimed_run(run_id, "tok", store=client.store)
        else:
            assert execute_claimed_run(expected, "tok", store=client.store).type is (
                StateType.COMPLETED
            )
    failed = client.get_run(run_id)
    assert failed.state is StateType.FAILED
    assert failed.state_message is not None
    assert "could not start it" in failed.state_message and "'n'" in failed.state_message
    assert client.get_run(fine["id"]).state is StateType.COMPLETED
