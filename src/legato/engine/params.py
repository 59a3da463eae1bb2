"""Flow parameters: bind call arguments, validate and coerce them against the type
hints (pydantic, imported only when a flow has hints), and encode them for storage."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from legato.errors import ParameterValidationError

# Containers (dicts, lists, tuples, sets) nested deeper than this in a parameter
# are refused: every store, view and JSON reader of the run must handle them.
MAX_PARAMETER_DEPTH = 64


def storable_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored and shown as JSON text, or None when it can:
    containers nested more than `MAX_PARAMETER_DEPTH` deep, or a string (or key)
    holding a lone surrogate (such as ``"\\ud800"``), which is not Unicode text.
    Iterative, so any depth is answered without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and not _is_unicode(item):
                return (
                    "holds a lone surrogate character (\\ud800-\\udfff), which is not "
                    "valid Unicode text; pass well-formed text"
                )
        elif isinstance(item, dict | list | tuple | set | frozenset):
            if depth >= MAX_PARAMETER_DEPTH:
                return (
                    f"is nested more than {MAX_PARAMETER_DEPTH} levels deep; flatten it "
                    f"or pass a reference (a path, an id) instead"
                )
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ParameterModel:
    """How to validate one flow's parameters; built once per flow function."""

    def __init__(self, fn: Callable[..., Any], flow_name: str) -> None:
        self.flow_name = flow_name
        try:
            # Resolve string annotations (``from __future__ import annotations``).
            self.signature = inspect.signature(fn, eval_str=True)
        except Exception:
            self.signature = inspect.signature(fn)
        self.params = self.signature.parameters
        self.accepts_extra = any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in self.params.values()
        )
        self.var_positional = next(
            (p.name for p in self.params.values() if p.kind is inspect.Parameter.VAR_POSITIONAL),
            None,
        )
        self.hinted = any(
            p.annotation is not inspect.Parameter.empty
            for p in self.params.values()
            if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        )
        self._adapter: Any = None

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map call arguments to parameter names (defaults not applied)."""
        unknown = {}
        if not self.accepts_extra:
            # Keep unknown names aside so `validate` reports them all by name.
            unknown = {k: kwargs[k] for k in kwargs if k not in self.params}
            kwargs = {k: v for k, v in kwargs.items() if k not in unknown}
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise ParameterValidationError(self.flow_name, [str(exc)]) from None
        params = dict(bound.arguments)
        params.update(unknown)
        for p in self.params.values():
            if p.kind is inspect.Parameter.VAR_KEYWORD and p.name in params:
                params.update(params.pop(p.name))
        return params

    def validate(
        self, params: dict[str, Any], *, coerce: bool = True, partial: bool = False
    ) -> dict[str, Any]:
        """Check names and required parameters, then (with hints) validate and coerce.

        ``partial`` checks only the parameters given (a deployment's defaults,
        completed when a run is triggered): missing required ones are fine.
        """
        problems: list[str] = []
        for name, value in params.items():
            problem = storable_problem(name) or storable_problem(value)
            if problem is not None:
                problems.append(f"{name!a} {problem}")
        if problems:
            raise ParameterValidationError(self.flow_name, problems)
        known = {
            name
            for name, p in self.params.items()
            if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        }
        if self.var_positional:
            known.add(self.var_positional)
        if not self.accepts_extra:
            for name in params:
                if name not in known:
                    accepted = ", ".join(sorted(known)) or "none"
                    problems.append(f"unknown parameter '{name}' (the flow accepts: {accepted})")
        for name, p in self.params.items():
            if (
                p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
                and p.default is inspect.Parameter.empty
                and name not in params
                and not partial
            ):
                problems.append(f"'{name}' is required but missing")
        if problems:
            raise ParameterValidationError(self.flow_name, problems)
        # Record the full set, defaults included, so a run shows what it ran with.
        full = {
            name: p.default
            for name, p in self.params.items()
            if p.default is not inspect.Parameter.empty
        }
        full.update(params)
        if not coerce or not self.hinted:
            return full
        return self._coerce(full, partial)

    def _coerce(self, params: dict[str, Any], partial: bool = False) -> dict[str, Any]:
        from pydantic import ValidationError

        model_type, field_names = self._get_adapter()
        hinted = {k: v for k, v in params.items() if k in field_names}
        try:
            model = model_type.model_validate(hinted)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                if partial and err["type"] == "missing":
                    continue
                loc = ".".join(str(x) for x in err["loc"]) or "?"
                got = err.get("input")
                shown = repr(got)
                if len(shown) > 60:
                    shown = shown[:57] + "..."
                problems.append(f"'{loc}': {err['msg']} (got {shown})")
            if not problems:  # only missing ones, in a partial check
                return params
            raise ParameterValidationError(self.flow_name, problems) from None
        out = dict(params)
        for name in hinted:
            out[name] = getattr(model, name)
        return out

    def _get_adapter(self) -> Any:
        if self._adapter is None:
            from pydantic import ConfigDict, create_model

            fields: dict[str, Any] = {}
            for name, p in self.params.items():
                if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
                    continue
                annotation = p.annotation
                if annotation is inspect.Parameter.empty or isinstance(annotation, str):
                    annotation = Any  # no hint, or one that could not be resolved
                default = ... if p.default is inspect.Parameter.empty else p.default
                fields[name] = (annotation, default)
            model = create_model(
                f"{self.flow_name}_parameters",
                __config__=ConfigDict(arbitrary_types_allowed=True),
                **fields,
            )

            self._adapter = (model, set(fields))
        return self._adapter

    def json_schema(self) -> dict[str, Any]:
        """The parameters as a JSON Schema object (for forms and API docs).

        A parameter whose type has no JSON Schema (an arbitrary class) makes
        the whole schema untyped rather than failing: names and required only.
        """
        from pydantic.errors import PydanticInvalidForJsonSchema, PydanticUserError

        model_type, _ = self._get_adapter()
        try:
            schema: dict[str, Any] = model_type.model_json_schema()
        except (PydanticInvalidForJsonSchema, PydanticUserError):
            return self._untyped_schema()
        return schema

    def _untyped_schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required = []
        for name, p in self.params.items():
            if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
                continue
            properties[name] = {"title": name}
            if p.default is inspect.Parameter.empty:
                required.append(name)
        return {"type": "object", "properties": properties, "required": required}

    def call_args(self, params: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Positional and keyword arguments that call the function with ``params``."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        extra = dict(params)
        for name, p in self.params.items():
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            if name not in extra:
                continue
            value = extra.pop(name)
            if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)
            elif p.kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(value)
            else:
                kwargs[name] = value
        kwargs.update(extra)
        return args, kwargs


def encode_parameters(params: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """A JSON view of the parameters, plus a pickle when JSON cannot hold them exactly."""
    try:
        text = json.dumps(params, allow_nan=False)  # NaN and infinities are not JSON
        if json.loads(text) == params:
            return params, None
    except (TypeError, ValueError):
        pass
    import cloudpickle

    return json_view(params), cloudpickle.dumps(params)


def json_view(value: Any) -> Any:
    """Best-effort JSON-compatible rendering (for display), never raising."""
    try:
        from pydantic_core import to_jsonable_python

        return to_jsonable_python(value, fallback=repr)
    except Exception:
        return repr(value)


def decode_parameters(json_params: dict[str, Any], blob: bytes | None) -> dict[str, Any]:
    if blob is not None:
        import cloudpickle

        decoded: dict[str, Any] = cloudpickle.loads(blob)
        return decoded
    return dict(json_params)
