"""Variables: named JSON values kept in the store, shared by flows, tasks and people.

Names and values are checked here, before the store sees them: a name is 1 to
255 lowercase letters, digits, underscores and dashes (as Prefect's); a value
is JSON (str, int, float, bool, None, lists and dicts with str keys) whose text
is at most `MAX_VALUE_CHARS` characters. The store keeps the JSON text as it is.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from legato.errors import InvalidVariableError, VariableExistsError
from legato.records import StoredVariable, utcnow
from legato.store.base import Store

MAX_NAME_CHARS = 255
MAX_VALUE_CHARS = 5000
MAX_TAGS = 50
MAX_TAG_CHARS = 255
_NAME = re.compile(r"[a-z0-9_-]+")
_JSON_KINDS = "str, int, float, bool, None, and lists and dicts (with str keys) of those"


def check_variable_name(name: object) -> str:
    """``name`` when it is a valid variable name; `InvalidVariableError` otherwise."""
    if not isinstance(name, str):
        raise InvalidVariableError(
            f"a variable name must be a str, not {type(name).__name__}; e.g. 'api_base_url'"
        )
    if not name or len(name) > MAX_NAME_CHARS or _NAME.fullmatch(name) is None:
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise InvalidVariableError(
            f"invalid variable name {shown!r}: use 1 to {MAX_NAME_CHARS} lowercase letters, "
            "digits, underscores and dashes, e.g. 'api_base_url'"
        )
    return name


def _check_json(name: str, value: object, path: str, depth: int) -> None:
    if depth > 100:
        raise InvalidVariableError(f"variable '{name}': {path} is nested too deeply")
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidVariableError(
                f"variable '{name}': {path} is {value!r}, which JSON cannot hold; "
                "use a finite number or a string"
            )
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(name, item, f"{path}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidVariableError(
                    f"variable '{name}': {path} has a key {key!r} of type "
                    f"{type(key).__name__}; JSON object keys must be str"
                )
            _check_json(name, item, f"{path}[{key!r}]", depth + 1)
        return
    raise InvalidVariableError(
        f"variable '{name}': {path} is a {type(value).__name__}, which a variable cannot "
        f"hold; a variable holds JSON: {_JSON_KINDS}"
    )


def encode_value(name: str, value: object) -> str:
    """The JSON text of ``value``; `InvalidVariableError` when it is not JSON or too long."""
    _check_json(name, value, "the value", 0)
    text = json.dumps(value, separators=(",", ":"))
    if len(text) > MAX_VALUE_CHARS:
        raise InvalidVariableError(
            f"variable '{name}': its value is {len(text)} characters as JSON, more than the "
            f"{MAX_VALUE_CHARS} a variable holds; keep large data in a file or a result "
            "and store its location instead"
        )
    return text


def decode_value(stored: StoredVariable) -> Any:
    return json.loads(stored.value)


def check_tags(name: str, tags: Sequence[str] | None) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str):
        raise InvalidVariableError(
            f"variable '{name}': tags must be a list of str, not one str; e.g. tags=['prod']"
        )
    found = tuple(tags)
    if len(found) > MAX_TAGS:
        raise InvalidVariableError(f"variable '{name}': at most {MAX_TAGS} tags, not {len(found)}")
    for tag in found:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_CHARS:
            raise InvalidVariableError(
                f"variable '{name}': the tag {tag!r} is not a str of 1 to {MAX_TAG_CHARS} "
                "characters"
            )
    return found


def set_variable(
    store: Store,
    name: str,
    value: object,
    *,
    tags: Sequence[str] | None = None,
    overwrite: bool = False,
) -> tuple[str, ...]:
    """Store ``value`` under ``name``; `VariableExistsError` when it exists and not
    ``overwrite``. Returns the tags stored."""
    check_variable_name(name)
    text = encode_value(name, value)
    tag_list = check_tags(name, tags)
    if not store.set_variable(name, text, tags=tag_list, overwrite=overwrite, now=utcnow()):
        raise VariableExistsError(name)
    return tag_list


def get_variable(store: Store, name: str) -> StoredVariable | None:
    return store.get_variable(check_variable_name(name))


def delete_variable(store: Store, name: str) -> bool:
    return store.delete_variable(check_variable_name(name))
