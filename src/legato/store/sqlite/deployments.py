"""Deployments on SQLite, and runs created at most once per idempotency key.

Mixed into `SQLiteStore`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from legato.deadlines import deadlines_from_json, deadlines_to_json
from legato.errors import StoreError
from legato.records import CollisionStrategy, Deployment, FlowRun, Schedule
from legato.states import StateType
from legato.store.notifications import RUNS_QUEUED
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


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
        rows.epoch(deployment.created),
        rows.epoch(now),
        rows.to_epoch(deployment.scheduled_until),
        deployment.description,
        rows.tags_json(deployment.tags),
        rows.to_json(deployment.parameters, f"the parameters of deployment '{deployment.name}'"),
        rows.to_json([s.to_dict() for s in deployment.schedules], "the schedules"),
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
        paused=bool(row[8]),
        catchup=bool(row[9]),
        created=rows.from_epoch(row[10]),  # type: ignore[arg-type]
        updated=rows.from_epoch(row[11]),  # type: ignore[arg-type]
        scheduled_until=rows.from_epoch(row[12]),
        description=row[13],
        tags=rows.tags_from(row[14]),
        parameters=json.loads(row[15]),
        schedules=tuple(Schedule.from_dict(s) for s in json.loads(row[16])),
        timeout_seconds=row[17],
        retries=row[18],
        parameter_schema=None if row[19] is None else json.loads(row[19]),
        deadlines=deadlines_from_json(row[20]),
    )


class SQLiteDeployments:
    """The deployments part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def save_deployment(self, deployment: Deployment, *, now: datetime) -> Deployment:
        params = deployment_params(deployment, now)
        found = self._db.write(
            lambda conn: conn.execute(QUERIES["save_deployment"], params).fetchall()
        )
        return deployment_from_row(found[0])

    def get_deployment(self, name: str) -> Deployment | None:
        row = self._db.fetchone(QUERIES["get_deployment"], (name,))
        return None if row is None else deployment_from_row(row)

    def list_deployments(self) -> list[Deployment]:
        found = self._db.fetchall(QUERIES["list_deployments"], ())
        return [deployment_from_row(row) for row in found]

    def delete_deployment(self, name: str) -> bool:
        return self._db.write(
            lambda conn: conn.execute(QUERIES["delete_deployment"], (name,)).rowcount > 0
        )

    def set_deployment_paused(self, name: str, paused: bool, *, now: datetime) -> bool:
        params = (paused, rows.epoch(now), name)
        return self._db.write(
            lambda conn: conn.execute(QUERIES["set_deployment_paused"], params).rowcount > 0
        )

    def advance_deployment_schedule(self, name: str, scheduled_until: datetime) -> None:
        until = rows.epoch(scheduled_until)
        params = (until, name, until)
        self._db.write(lambda conn: conn.execute(QUERIES["advance_deployment_schedule"], params))

    def create_flow_run_once(
        self, run: FlowRun, parameters_blob: bytes | None = None
    ) -> tuple[FlowRun, bool]:
        if not run.idempotency_key:
            raise StoreError("create_flow_run_once needs a run with an idempotency_key")
        params = rows.flow_run_params(run, parameters_blob)
        tag_params = rows.flow_run_tag_params(params)
        queued = run.work_queue is not None and run.state is StateType.SCHEDULED
        key = run.idempotency_key

        def insert(conn: sqlite3.Connection) -> tuple[Any, bool]:
            existing = conn.execute(QUERIES["find_run_by_idempotency_key"], (key,)).fetchone()
            if existing is not None:
                return existing, False
            conn.execute(QUERIES["insert_flow_run"], params)
            if tag_params is not None:
                conn.execute(QUERIES["insert_flow_run_tags"], tag_params)
            if queued:
                conn.execute(QUERIES["notify"], (RUNS_QUEUED, run.work_queue))
            return conn.execute(QUERIES["get_flow_run"], (run.id,)).fetchone(), True

        row, created = self._db.write(insert)
        return rows.flow_run_from_row(row), created
