"""A deployment's parameter schema: recorded where the flow's code runs, checked
where it must not.

`legato deploy`, `Flow.deploy` and `Flow.serve` run in the user's own process,
which imports the flow anyway: they record its parameters as a JSON Schema with
the deployment (`schema_of_flow`). The server never imports user code, so it
checks a triggered run's parameters against that recorded schema
(`check_parameters`): unknown and missing names, then each value's type with
pydantic's own (lax) rules, the ones the flow applies when it runs. A
deployment created through the API without a schema has nothing to check
against here: its run's parameters are checked by the worker that runs it,
which fails the run with the reason when they do not fit.

A schema may come from an API request, so it is read defensively: depth and size
are bounded, and anything not understood means "any value".
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any, Literal, Union

from legato.errors import ConfigurationError, ParameterValidationError

if TYPE_CHECKING:
    from legato.flows import Flow

_MAX_DEPTH = 12  # nested levels read from a schema; deeper means "any value"
_MAX_SCHEMA_BYTES = 256 * 1024  # a recorded schema, as JSON

_FORMATS: dict[str, Any] = {
    "date-time": dt.datetime,
    "date": dt.date,
    "time": dt.time,
    "duration": dt.timedelta,
    "uuid": uuid.UUID,
}
_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": None,
}


def schema_of_flow(flow: Flow[Any, Any]) -> dict[str, Any]:
    """The JSON Schema recorded with a deployment of ``flow``: its parameters'
    types (names and required ones only when the flow does not validate them),
    and ``additionalProperties: false`` unless it takes ``**kwargs``."""
    model = flow.parameter_model
    schema = model.json_schema()
    if not flow.validate_parameters:  # the flow takes any value: record names only
        properties = schema.get("properties") or {}
        schema = {
            "type": "object",
            "properties": {name: {"title": name} for name in properties},
            "required": list(schema.get("required") or []),
        }
    if not model.accepts_extra:
        schema["additionalProperties"] = False
    return schema


def check_schema(schema: Any, deployment: str) -> dict[str, Any]:
    """A parameter schema given from outside (an API request), checked for shape
    before it is stored: a JSON object describing an object, with ``properties``
    an object of objects and ``required`` a list of names."""
    import json

    def wrong(why: str) -> ConfigurationError:
        return ConfigurationError(
            f"the parameter_schema of deployment '{deployment}' {why}; give the JSON "
            f"Schema `legato deploy` records (an object with 'properties' and 'required'), "
            f"or leave it out and the worker checks the parameters"
        )

    if not isinstance(schema, dict):
        raise wrong("must be a JSON object")
    try:
        size = len(json.dumps(schema, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise wrong("is not plain JSON") from None
    if size > _MAX_SCHEMA_BYTES:
        raise wrong(f"is {size:,} bytes of JSON, more than the {_MAX_SCHEMA_BYTES:,} allowed")
    if schema.get("type", "object") != "object":
        raise wrong("must describe an object (type 'object')")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict) or not all(
        isinstance(value, dict) for value in properties.values()
    ):
        raise wrong("must have 'properties' mapping each name to a schema object")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise wrong("must have 'required' as a list of names")
    return schema


def check_parameters(
    schema: dict[str, Any] | None,
    parameters: dict[str, Any],
    *,
    flow_name: str,
    partial: bool = False,
) -> None:
    """Raise `ParameterValidationError` listing every problem of ``parameters``
    against a recorded ``schema``; nothing to check (None) passes.

    ``partial`` checks only the parameters given (a deployment's defaults)."""
    if schema is None:
        return
    from pydantic import TypeAdapter, ValidationError

    properties: dict[str, Any] = schema.get("properties") or {}
    problems: list[str] = []
    if schema.get("additionalProperties") is False:
        accepted = ", ".join(sorted(properties)) or "none"
        problems += [
            f"unknown parameter '{name}' (the flow accepts: {accepted})"
            for name in parameters
            if name not in properties
        ]
    if not partial:
        problems += [
            f"'{name}' is required but missing"
            for name in schema.get("required") or []
            if name not in parameters
        ]
    if problems:
        raise ParameterValidationError(flow_name, problems)
    defs = schema.get("$defs") or schema.get("definitions") or {}
    for name, value in parameters.items():
        prop = properties.get(name)
        if not isinstance(prop, dict):
            continue
        annotation = _annotation(prop, defs, 0)
        if annotation is Any:
            continue
        try:
            TypeAdapter(annotation).validate_python(value)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(x) for x in (name, *err["loc"]))
                shown = repr(err.get("input"))
                if len(shown) > 60:
                    shown = shown[:57] + "..."
                problems.append(f"'{loc}': {err['msg']} (got {shown})")
    if problems:
        raise ParameterValidationError(flow_name, problems)


def with_defaults(schema: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with a deployment's parameters as the defaults (for a
    "run now" form): those are no longer required."""
    schema = copy.deepcopy(schema)
    properties = schema.get("properties") or {}
    for key, value in parameters.items():
        if isinstance(properties.get(key), dict):
            properties[key] = {**properties[key], "default": value}
    schema["required"] = [key for key in schema.get("required") or [] if key not in parameters]
    return schema


def _annotation(node: Any, defs: Any, depth: int) -> Any:
    """The Python type pydantic validates a value of schema ``node`` with."""
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return Any
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = ref.rpartition("/")[2]
        return _annotation(defs.get(target) if isinstance(defs, dict) else None, defs, depth + 1)
    if "const" in node:
        return _literal([node["const"]])
    if isinstance(node.get("enum"), list):
        return _literal(node["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            return _union([_annotation(item, defs, depth + 1) for item in node[key]])
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return _annotation(all_of[0], defs, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        return _union([_annotation({**node, "type": k}, defs, depth + 1) for k in kind])
    if kind == "string":
        fmt = node.get("format")
        return _FORMATS.get(fmt, str) if isinstance(fmt, str) else str
    if kind in _TYPES:
        return _TYPES[kind]
    if kind == "array":
        items = node.get("items")
        return list[_annotation(items, defs, depth + 1)] if isinstance(items, dict) else list  # type: ignore[misc]
    if kind == "object":
        extra = node.get("additionalProperties")
        value = _annotation(extra, defs, depth + 1) if isinstance(extra, dict) else Any
        return dict[str, value]  # type: ignore[valid-type]
    return Any


def _literal(values: list[Any]) -> Any:
    if values and all(v is None or isinstance(v, str | int | float | bool) for v in values):
        return Literal[tuple(values)]
    return Any


def _union(options: list[Any]) -> Any:
    if not options or any(option is Any for option in options):
        return Any
    return Union[tuple(options)]  # noqa: UP007  # built from a list at run time
