"""Deployments on PostgreSQL, and runs created at most once per idempotency key.

Mixed into `PostgresStore`; one statement per call, like the rest of the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from legato.deadlines import deadlines_from_json, deadlines_to_json
from legato.errors import StoreError
from legato.records import CollisionStrategy, Deployment, FlowRun, Schedule
from legato.store.postgres import rows
from legato.store.postgres.connection import Database
from legato.store.postgres.sql import QUERIES


def deployment_params(deployment: Deployment, now: datetime) -> tuple[Any, ...]:
    return (
        deployment.name,
        deployment.id,
        deployment.flow_name,
        deployment.entrypoint,
        deployment.work_queue,
        deployment.priority,
        deployment.concurrency_limit,
        CollisionStrategy(deployment.collision_strategy).value,
        deployment.paused,
        deployment.catchup,
        deployment.created,
        now,
        deployment.scheduled_until,
        rows.text(deployment.description),
        rows.to_jsonb(list(deployment.tags), "the tags") if deployment.tags else None,
        rows.to_json(deployment.parameters, f"the parameters of deployment '{deployment.name}'"),
        rows.to_jsonb([s.to_dict() for s in deployment.schedules], "the schedules"),
        deployment.timeout_seconds,
        deployment.retries,
        None
        if deployment.parameter_schema is None
        else rows.to_json(deployment.parameter_schema, "the parameter schema"),
        deadlines_to_json(deployment.deadlines),
    )


def deployment_from_row(row: Sequence[Any]) -> Deployment:
    return Deployment(
        name=row[0],
        id=row[1],
        flow_name=row[2],
        entrypoint=row[3],
        work_queue=row[4],
        priority=row[5],
        concurrency_limit=row[6],
        collision_strategy=CollisionStrategy(row[7]),
        paused=row[8],
        catchup=row[9],
        created=row[10],
        updated=row[11],
        scheduled_until=row[12],
        description=row[13],
        tags=() if row[14] is None else tuple(row[14]),
        parameters=row[15],
        schedules=tuple(Schedule.from_dict(s) for s in row[16]),
        timeout_seconds=row[17],
        retries=row[18],
        parameter_schema=row[19],
        deadlines=deadlines_from_json(row[20]),
    )


class PostgresDeployments:
    """The deployments part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def save_deployment(self, deployment: Deployment, *, now: datetime) -> Deployment:
        row = self._db.fetchone(QUERIES["save_deployment"], deployment_params(deployment, now))
        return deployment_from_row(row)

    def get_deployment(self, name: str) -> Deployment | None:
        row = self._db.fetchone(QUERIES["get_deployment"], (name,))
        return None if row is None else deployment_from_row(row)

    def list_deployments(self) -> list[Deployment]:
        found = self._db.fetchall(QUERIES["list_deployments"], ())
        return [deployment_from_row(row) for row in found]

    def delete_deployment(self, name: str) -> bool:
        return self._db.execute(QUERIES["delete_deployment"], (name,)) > 0

    def set_deployment_paused(self, name: str, paused: bool, *, now: datetime) -> bool:
        return self._db.execute(QUERIES["set_deployment_paused"], (paused, now, name)) > 0

    def advance_deployment_schedule(self, name: str, scheduled_until: datetime) -> None:
        params = (scheduled_until, name, scheduled_until)
        self._db.execute(QUERIES["advance_deployment_schedule"], params)

    def create_flow_run_once(
        self, run: FlowRun, parameters_blob: bytes | None = None
    ) -> tuple[FlowRun, bool]:
        key = run.idempotency_key
        if not key:
            raise StoreError("create_flow_run_once needs a run with an idempotency_key")
        params = (*rows.flow_run_params(run, parameters_blob), key)
        row = self._db.fetchone(QUERIES["create_flow_run_once"], params)
        if row is None:  # a concurrent insert of the same key won; read what it made
            row = self._db.fetchone(QUERIES["find_run_by_idempotency_key"], (key,))
            if row is None:
                raise StoreError(f"the run with idempotency key '{key}' vanished while created")
            return rows.flow_run_from_row(row), False
        return rows.flow_run_from_row(row[:-2]), bool(row[-2])
