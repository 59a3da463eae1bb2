"""`@task` and `@flow` on instance methods, classmethods and staticmethods (as in Prefect 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

import legato
from legato import flow, pause_flow_run, task
from legato.client import Client
from legato.errors import FlowPaused, TargetNotFoundError
from legato.states import StateType


class Pricing:
    rate = 3

    def __init__(self, factor: int) -> None:
        self.factor = factor

    @task
    def scale(self, x: int) -> int:
        return x * self.factor

    @classmethod
    @task
    def with_rate(cls, x: int) -> int:
        return x * cls.rate

    @task
    @classmethod
    def with_rate_inner(cls, x: int) -> int:
        return x + cls.rate

    @staticmethod
    @task
    def offset(x: int) -> int:
        return x + 100

    @task
    @staticmethod
    def offset_inner(x: int) -> int:
        return x + 1000

    @flow
    def price(self, amount: int) -> list[int]:
        return [
            self.scale(amount),
            self.with_rate(amount),
            Pricing.with_rate_inner(amount),
            self.offset(amount),
            self.offset_inner(amount),
            self.scale.submit(amount + 1).result(),
        ]

    @classmethod
    @flow
    def class_price(cls, amount: int) -> int:
        return cls.with_rate(amount)

    @flow
    @classmethod
    def class_total(cls, amount: int) -> int:
        return amount * cls.rate

    @flow
    @staticmethod
    def static_total(amount: int) -> int:
        return amount + 1


def test_methods_as_tasks_inside_a_flow_method_are_recorded(legato_home: Path) -> None:
    assert Pricing(2).price(5) == [10, 15, 8, 105, 1005, 12]
    client = Client()
    [run] = client.list_runs()
    assert run.flow_name == "price"
    assert run.state is StateType.COMPLETED
    assert run.parameters == {"amount": 5}  # no `self`
    assert run.entrypoint is None  # another process cannot rebuild the instance
    names = sorted(t.task_name for t in client.task_runs(run.id))
    assert names == sorted(
        ["scale", "with_rate", "with_rate_inner", "offset", "offset_inner", "scale"]
    )


def test_a_classmethod_flow_binds_the_class(legato_home: Path) -> None:
    assert Pricing.class_price(2) == 6
    assert Pricing(9).class_price(amount=3) == 9
    runs = Client().list_runs()
    assert [r.parameters for r in runs] == [{"amount": 3}, {"amount": 2}]


def test_flow_over_classmethod_and_staticmethod(legato_home: Path) -> None:
    assert Pricing(1).class_total(4) == 12
    assert Pricing.static_total(4) == Pricing(1).static_total(amount=4) == 5
    runs = Client().list_runs()
    assert [(r.flow_name, r.parameters) for r in runs] == [
        ("static_total", {"amount": 4}),
        ("static_total", {"amount": 4}),
        ("class_total", {"amount": 4}),
    ]


def test_a_bound_method_task_shares_its_options_and_binds_each_instance() -> None:
    first, second = Pricing(2).scale, Pricing(3).scale
    assert first.name == second.name == "scale"
    assert first.parameter_names == ("x",)
    assert Pricing.scale.parameter_names == ("self", "x")
    assert first.on_failure is Pricing.scale.on_failure
    assert (first(4), second(4)) == (8, 12)  # outside a flow: standalone task runs


class Approval:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @task
    def stamp(self, doc: str) -> str:
        return f"{self.prefix}:{doc}"

    @flow
    def approve(self, doc: str) -> str:
        stamped = self.stamp(doc)
        pause_flow_run(timeout=60)
        return stamped.upper()


def test_a_paused_method_flow_resumes_in_process_with_the_bound_flow(legato_home: Path) -> None:
    approval = Approval("ok")
    with pytest.raises(FlowPaused):
        approval.approve("memo")
    [run] = Client().list_runs()
    assert run.state is StateType.PAUSED
    assert run.parameters == {"doc": "memo"}
    # Without the instance the run cannot be resumed: the message says what to pass.
    with pytest.raises(TargetNotFoundError, match="flow=<the flow>"):
        legato.resume_flow_run(run.id)
    assert legato.resume_flow_run(run.id, flow=approval.approve) == "OK:MEMO"
    assert Client().get_run(run.id).state is StateType.COMPLETED
