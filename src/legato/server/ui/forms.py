"""HTML forms generated from JSON Schema: a paused run's `RunInput`, a flow's parameters.

`form_fields` turns a schema into field descriptions a template renders;
`parse_form` turns the submitted strings back into JSON values by the same
schema. Validation itself stays where it lives (the engine's input and
parameter checks): a value that does not parse is passed on as the string the
user typed, so the error names the field and shows what was given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIELD_PREFIX = "field."


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of a generated form."""

    name: str
    label: str
    kind: str  # "text", "integer", "number", "boolean", "choice" or "json"
    required: bool
    value: str  # what the input shows: the default, or what was submitted
    description: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def input_name(self) -> str:
        return FIELD_PREFIX + self.name


def _kind(prop: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    options = prop.get("anyOf")
    if isinstance(options, list):
        # ``int | None`` is its non-null type; any richer union is typed as JSON.
        non_null = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if len(non_null) == 1:
            return _kind(non_null[0])
        return "json", ()
    if "enum" in prop and isinstance(prop["enum"], list):
        return "choice", tuple(str(v) for v in prop["enum"])
    kind = prop.get("type")
    if kind == "string":
        return "text", ()
    if kind in ("integer", "number", "boolean"):
        return str(kind), ()
    return "json", ()


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("text", "choice") and isinstance(value, str):
        return value
    return json.dumps(value)


def form_fields(
    schema: Mapping[str, Any] | None,
    values: Mapping[str, Any] | None = None,
    *,
    submitted: Mapping[str, str] | None = None,
) -> list[FormField]:
    """Fields for ``schema``'s properties, showing ``values`` (defaults otherwise),
    or what was ``submitted`` when a form comes back with errors."""
    if not schema:
        return []
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    fields = []
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            prop = {}
        kind, choices = _kind(prop)
        if submitted is not None and name in submitted:
            shown = submitted[name]
        elif values is not None and name in values:
            shown = _shown(values[name], kind)
        else:
            shown = _shown(prop.get("default"), kind)
        fields.append(
            FormField(
                name=str(name),
                label=str(prop.get("title") or name),
                kind=kind,
                required=name in required,
                value=shown,
                description=prop.get("description"),
                choices=choices,
            )
        )
    return fields


def submitted_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The generated fields' raw strings from a submitted form, by field name."""
    return {
        key[len(FIELD_PREFIX) :]: str(value)
        for key, value in form.items()
        if key.startswith(FIELD_PREFIX)
    }


def _parse(text: str, kind: str) -> Any:
    if kind in ("text", "choice"):
        return text
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "on", "yes", "1"):
            return True
        if lowered in ("false", "off", "no", "0"):
            return False
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text  # left for validation to name the field


def parse_form(schema: Mapping[str, Any] | None, raw: Mapping[str, str]) -> dict[str, Any]:
    """JSON values for the submitted fields; an empty optional field is left out
    (the default applies), an empty required one too (validation reports it)."""
    properties = (schema or {}).get("properties") or {}
    values: dict[str, Any] = {}
    for name, text in raw.items():
        prop = properties.get(name)
        kind = _kind(prop)[0] if isinstance(prop, dict) else "json"
        if text.strip() == "" and kind != "text":
            continue
        if text == "" and kind == "text" and name not in set((schema or {}).get("required") or ()):
            continue
        values[name] = _parse(text, kind)
    return values
