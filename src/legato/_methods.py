"""Tasks and flows defined on classes: bound to their instance or class like functions.

``@task``/``@flow`` on an instance method, and ``@classmethod``/``@staticmethod``
in either order around them, behave as the plain methods would: ``obj.method(x)``
passes ``obj`` (or the class) first. The bound task or flow is a shallow copy that
shares every option with the decorated one.
"""

from __future__ import annotations

from typing import Any, Literal

MethodKind = Literal["class", "static"] | None


def unwrap_method(fn: Any) -> tuple[Any, MethodKind]:
    """The function inside a ``classmethod``/``staticmethod`` object, and which it was."""
    if isinstance(fn, staticmethod):
        return fn.__func__, "static"
    if isinstance(fn, classmethod):
        return fn.__func__, "class"
    return fn, None


def binding_target(kind: MethodKind, instance: Any, owner: Any) -> Any:
    """What ``__get__`` binds as the first argument, or None when nothing is bound."""
    if kind == "static":
        return None
    if kind == "class":
        return owner if owner is not None else type(instance)
    return instance
