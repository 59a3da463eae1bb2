"""The OpenAPI document describes the API: schemathesis over `/openapi.json`.

Every operation is called with generated requests, valid and invalid (a bounded
number per operation), in process over ASGI, against a store seeded with runs,
a paused run, deployments and a limit; about half the calls use a real id in
place of the generated one, so routes with ids answer more than 404. Each answer
must be documented: no server error, a documented status and content type, a
body matching its documented schema, and invalid data refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from _server_support import paused_deployment_run, run_flow, write_flows  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode, checks  # noqa: E402

from legato.client import Client  # noqa: E402
from legato.server import create_app  # noqa: E402

EXAMPLES = 15  # per operation and mode: 30 requests per operation
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


class Seeded:
    """Real ids to swap into generated requests, one after another."""

    def __init__(self, client: Client, flows: Path) -> None:
        done = run_flow(client, flows, "doubled", n=2)
        failed = run_flow(client, flows, "broken")
        client.deploy(f"{flows}:doubled", name="dbl", parameters={"n": 2}, priority=1)
        paused = paused_deployment_run(client, flows)
        client.set_limit("db", 2)
        task = client.finished_task_runs(client.get_run(done))[0]
        self.values: dict[str, Iterator[str | None]] = {
            # A paused run's log stream never ends: streams get final runs only.
            "run_id": itertools.cycle([None, done, failed, paused.id, done[:8]]),
            "stream_run_id": itertools.cycle([None, done, failed]),
            "task_run_id": itertools.cycle([None, task.id]),
            "name": itertools.cycle([None, "dbl", "approve", "db"]),
        }

    def apply(self, case: Any) -> None:
        streaming = case.path.endswith("/logs/stream")
        for key in list(case.path_parameters or {}):
            source = "stream_run_id" if streaming and key == "run_id" else key
            value = next(self.values[source]) if source in self.values else None
            if value is not None:
                case.path_parameters[key] = value


@pytest.fixture
def seeded_schema(tmp_path: Path) -> Iterator[tuple[Any, Seeded]]:
    client = Client()
    seeded = Seeded(client, write_flows(tmp_path))
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(client)), seeded
    client.store.close()


def test_every_operation_answers_as_documented(seeded_schema: tuple[Any, Seeded]) -> None:
    # Each operation's own Hypothesis test, valid requests then invalid ones
    # (schemathesis's pytest plugin is not used: its lazy loader does not run on
    # this pytest). A failure is kept and the others still run, so one run of the
    # test reports every operation that does not answer as documented.
    api, seeded = seeded_schema
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def call(case: Any) -> None:
                seeded.apply(case)
                case.call_and_validate(checks=CHECKS)

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing of it can be made invalid
            except (Exception, BaseExceptionGroup) as exc:  # reported below, all at once
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
