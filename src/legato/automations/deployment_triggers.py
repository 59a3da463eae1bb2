"""Deployment triggers: "run this deployment when these events happen".

A deployment trigger is sugar over an automation. Each trigger of deployment
``B`` is stored as the automation ``deployment:B:<i>`` (an event trigger, and
one run-deployment action of ``B`` with the trigger's templated parameters), so
the one evaluator of `legato.automations` fires it exactly once per firing.
Deploying ``B`` again replaces its automations; deleting ``B`` deletes them.

    from legato import DeploymentEventTrigger

    DeploymentEventTrigger(
        expect=["legato.flow-run.Completed"],
        match_related={"flow": "upstream"},
        parameters={"upstream_run_id": "{{ flow_run_id }}"},
    )

The arguments are Prefect's ``DeploymentEventTrigger``'s. In ``match_related``
the short keys ``flow``, ``deployment`` and ``tag`` stand for the
``legato.resource.id`` of that related resource (``legato.flow.<name>`` …);
``prefect.`` label names and event names are read as ``legato.`` ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from legato._event_records import RESOURCE_ID
from legato.automations.model import Automation, EventTrigger, Posture, RunDeployment
from legato.errors import ConfigurationError

if TYPE_CHECKING:
    from legato._automation_records import StoredAutomation
    from legato.store.base import Store

#: short keys of ``match_related`` and the resource-id prefix each stands for
SHORT_KEYS = {"flow": "legato.flow.", "deployment": "legato.deployment.", "tag": "legato.tag."}
_TRIGGER_FIELDS = (
    "match",
    "match_related",
    "expect",
    "after",
    "for_each",
    "posture",
    "threshold",
    "within",
)


def _legato_name(text: str) -> str:
    return "legato." + text.removeprefix("prefect.") if text.startswith("prefect.") else text


def _labels(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Sequence) and not isinstance(value, str):
        # Prefect takes a list of resource specifications; legato matches one.
        if len(value) > 1:
            raise ConfigurationError(
                f"{what}: give one label object (legato matches one related resource), "
                f"got a list of {len(value)}"
            )
        value = value[0] if value else {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{what}: expected an object of labels, got {value!r}")
    found: dict[str, Any] = {}
    for key, wanted in value.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"{what}: label names are text, got {key!r}")
        values = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(values, Sequence) or not all(isinstance(v, str) for v in values):
            raise ConfigurationError(
                f"{what}: the value of {key!r} must be text or a list of texts, got {wanted!r}"
            )
        values = [_legato_name(v) for v in values]
        found[_legato_name(key)] = values[0] if isinstance(wanted, str) else values
    return found


def expand_related(labels: dict[str, Any], what: str) -> dict[str, Any]:
    """``labels`` with a short key (``flow``, ``deployment``, ``tag``) turned into the
    ``legato.resource.id`` of that related resource."""
    short = [k for k in labels if k in SHORT_KEYS]
    if not short:
        return labels
    if len(short) > 1 or RESOURCE_ID in labels:
        named = ", ".join([*short, *([RESOURCE_ID] if RESOURCE_ID in labels else [])])
        raise ConfigurationError(
            f"{what}: {named} each name the related resource's id, and match_related "
            f"matches ONE related resource; give one of them"
        )
    key = short[0]
    value = labels[key]
    ids: str | list[str] = (
        SHORT_KEYS[key] + value if isinstance(value, str) else [SHORT_KEYS[key] + v for v in value]
    )
    rest = {k: v for k, v in labels.items() if k != key}
    return {RESOURCE_ID: ids, **rest}


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or not all(isinstance(n, str) for n in items):
        raise ConfigurationError(f"{what}: expected event names, got {value!r}")
    return sorted({_legato_name(n) for n in items})


class DeploymentEventTrigger:
    """Run the deployment when events happen (Prefect's ``DeploymentEventTrigger``).

    ``expect``: event names (or ``prefix.*``) that count; ``match`` / ``match_related``:
    labels of the event's resource / of one related resource (``flow``, ``deployment``,
    ``tag`` as short keys there); ``after``, ``for_each``, ``posture`` (``"Reactive"``
    or ``"Proactive"``), ``threshold``, ``within`` (seconds or a timedelta) as in an
    automation's event trigger; ``parameters``: the run's parameters, each text a
    sandboxed Jinja2 template over ``event``, ``flow_run_id`` (the run the event is
    about), ``automation`` and ``firing``. ``name``, ``description``, ``enabled``
    describe the automation. Prefect's ``job_variables`` is refused (no images here).
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        enabled: bool = True,
        match: Mapping[str, Any] | None = None,
        match_related: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        after: Iterable[str] | None = None,
        expect: Iterable[str] | None = None,
        for_each: Iterable[str] | None = None,
        posture: str | Posture = Posture.REACTIVE,
        threshold: int = 1,
        within: float | timedelta = 0,
        parameters: Mapping[str, Any] | None = None,
        job_variables: Mapping[str, Any] | None = None,
    ) -> None:
        what = f"trigger {name!r}" if name else "deployment trigger"
        if job_variables:
            raise ConfigurationError(
                f"{what}: job_variables are not supported (legato runs flows from source "
                f"with workers); leave them out"
            )
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ConfigurationError(f"{what}: parameters must be an object, got {parameters!r}")
        if not isinstance(enabled, bool):
            raise ConfigurationError(f"{what}: enabled must be true or false, got {enabled!r}")
        self.name = name
        self.description = description
        self.enabled = enabled
        self.parameters: dict[str, Any] = dict(parameters or {})
        _check_templates(self.parameters, what)
        try:
            self.trigger = EventTrigger.model_validate(
                {
                    "match": _labels(match, f"{what}: match"),
                    "match_related": expand_related(
                        _labels(match_related, f"{what}: match_related"), f"{what}: match_related"
                    ),
                    "after": _names(after, f"{what}: after"),
                    "expect": _names(expect, f"{what}: expect"),
                    "for_each": [_legato_name(n) for n in _names(for_each, f"{what}: for_each")],
                    "posture": posture,
                    "threshold": threshold,
                    "within": within,
                }
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'trigger'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigurationError(f"{what}: {problems}") from None

    @classmethod
    def from_spec(cls, data: Any, what: str) -> DeploymentEventTrigger:
        """A trigger from a ``triggers:`` entry of legato.yaml (or JSON)."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{what}: expected an object, got {data!r}")
        known = {*_TRIGGER_FIELDS, "name", "description", "enabled", "parameters"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(
                f"{what}: unknown field(s) {', '.join(map(str, unknown))}; "
                f"a trigger takes {', '.join(sorted(known))}"
            )
        try:
            return cls(**{str(k): v for k, v in data.items()})
        except ConfigurationError as exc:
            raise ConfigurationError(f"{what}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        data = self.trigger.model_dump(mode="json", exclude={"type"})
        data["within"] = self.trigger.within.total_seconds()
        return {"name": self.name, **data, "parameters": self.parameters}

    def __repr__(self) -> str:
        return f"DeploymentEventTrigger({self.to_dict()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeploymentEventTrigger):
            return NotImplemented
        return self.to_dict() == other.to_dict() and (
            self.description,
            self.enabled,
        ) == (other.description, other.enabled)

    __hash__ = None  # type: ignore[assignment]  # mutable parameters


def _check_templates(value: Any, what: str) -> None:
    """Refuse a parameter template that does not parse now, not at the first firing."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment()

    def walk(item: Any, path: str) -> None:
        if isinstance(item, str) and "{" in item:
            try:
                env.parse(item)
            except TemplateSyntaxError as exc:
                raise ConfigurationError(
                    f"{what}: parameter {path} is not a valid template ({exc.message}); "
                    f"write e.g. '{{{{ flow_run_id }}}}'"
                ) from None
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(item, list):
            for n, inner in enumerate(item):
                walk(inner, f"{path}[{n}]")

    walk(value, "")


def check_triggers(triggers: Any, what: str) -> tuple[DeploymentEventTrigger, ...]:
    """``triggers`` as a tuple of `DeploymentEventTrigger` (dicts are read as specs)."""
    if triggers is None:
        return ()
    if isinstance(triggers, (str, bytes, Mapping)) or not isinstance(triggers, Iterable):
        raise ConfigurationError(f"{what}: triggers must be a list, got {triggers!r}")
    found = []
    for n, item in enumerate(triggers):
        if isinstance(item, DeploymentEventTrigger):
            found.append(item)
        elif isinstance(item, Mapping):
            found.append(DeploymentEventTrigger.from_spec(item, f"{what}: triggers[{n}]"))
        else:
            raise ConfigurationError(
                f"{what}: triggers[{n}] must be a legato.DeploymentEventTrigger or an "
                f"object of its fields, got {type(item).__name__}"
            )
    return tuple(found)


def automation_name(deployment: str, index: int) -> str:
    return f"deployment:{deployment}:{index}"


def owned_prefix(deployment: str) -> str:
    """Names of the automations a deployment owns start with this (deployment names
    have no ':')."""
    return f"deployment:{deployment}:"


def compile_trigger(deployment: str, index: int, trigger: DeploymentEventTrigger) -> Automation:
    """The automation that stands for trigger ``index`` of ``deployment``."""
    described = (
        trigger.description
        or (f"{trigger.name}: " if trigger.name else "")
        + f"runs deployment {deployment} (its trigger {index})"
    )
    return Automation(
        name=automation_name(deployment, index),
        description=described,
        enabled=trigger.enabled,
        trigger=trigger.trigger,
        actions=[RunDeployment(deployment=deployment, parameters=trigger.parameters)],
    )


def replace_triggers(
    store: Store, deployment: str, triggers: Sequence[DeploymentEventTrigger]
) -> None:
    """Store the deployment's triggers as its automations, deleting those it no longer
    has. A trigger kept at the same index keeps its automation (and open windows)."""
    from legato.automations import service

    wanted = [compile_trigger(deployment, n, t) for n, t in enumerate(triggers)]
    service.apply(store, wanted)
    names = {a.name for a in wanted}
    for stored in owned(store, deployment):
        if stored.name not in names:
            store.delete_automation(stored.name)


def owned(store: Store, deployment: str) -> list[StoredAutomation]:
    """The automations deployment ``deployment``'s triggers are stored as, in order."""
    prefix = owned_prefix(deployment)
    found = [
        a
        for a in store.list_automations()
        if a.name.startswith(prefix) and a.name.removeprefix(prefix).isdigit()
    ]
    return sorted(found, key=lambda a: int(a.name.rpartition(":")[2]))


def delete_triggers(store: Store, deployment: str) -> None:
    for stored in owned(store, deployment):
        store.delete_automation(stored.name)
