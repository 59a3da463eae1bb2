"""Entrypoints: where a flow's code lives, so another process can load it to resume.

``path/to/file.py:flow_fn`` for flows defined in a script, ``package.module:flow_fn``
for flows in an importable module.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from legato.errors import TargetNotFoundError

if TYPE_CHECKING:
    from legato.flows import Flow

# Module names given to files loaded by path, so a second load reuses the module.
_loaded_files: dict[str, ModuleType] = {}


def entrypoint_of(fn: Any) -> str | None:
    """The entrypoint that loads ``fn``'s flow in another process, if there is one."""
    module_name = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "")
    if not module_name or "<" in qualname or "." in qualname:
        return None  # defined inside a function or class: not loadable by name
    module = sys.modules.get(module_name)
    if module is None:
        return None
    path = getattr(module, "__file__", None)
    loaded_by_path = getattr(module, "__legato_path__", None)
    if module_name == "__main__" or loaded_by_path:
        if not path:
            return None
        return f"{os.path.abspath(path)}:{fn.__name__}"
    spec = getattr(module, "__spec__", None)
    if spec is None:
        return f"{os.path.abspath(path)}:{fn.__name__}" if path else None
    return f"{module_name}:{fn.__name__}"


def load_flow(target: str) -> Flow:
    """Load the flow named by ``target`` (see module doc)."""
    from legato.flows import Flow

    obj = load_object(target)
    if isinstance(obj, Flow):
        return obj
    kind = type(obj).__name__
    raise TargetNotFoundError(
        f"'{target}' is a {kind}, not a flow; decorate the function with @flow"
    )


def load_object(target: str) -> Any:
    path_part, sep, attr = target.rpartition(":")
    if not sep or not path_part or not attr:
        raise TargetNotFoundError(
            f"'{target}' is not a flow target; write path/to/file.py:flow_function "
            f"or package.module:flow_function"
        )
    if path_part.endswith(".py") or os.sep in path_part or "/" in path_part:
        module = load_file(path_part)
    else:
        try:
            module = importlib.import_module(path_part)
        except ModuleNotFoundError as exc:
            raise TargetNotFoundError(
                f"cannot import module '{path_part}' ({exc}); check the name, or give a "
                f"file path like path/to/file.py:{attr}"
            ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = sorted(n for n, v in vars(module).items() if type(v).__name__ == "Flow")
            hint = f"; flows defined there: {', '.join(names)}" if names else ""
            raise TargetNotFoundError(f"'{path_part}' has no attribute '{attr}'{hint}") from None
    return obj


def load_file(path_str: str) -> ModuleType:
    path = Path(path_str).expanduser().resolve()
    if not path.is_file():
        raise TargetNotFoundError(f"file '{path_str}' does not exist")
    key = str(path)
    if key in _loaded_files:
        return _loaded_files[key]
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main is not None and main_file and Path(main_file).resolve() == path:
        # The script running now: use it, do not execute it again as another module
        # (its flows and globals are the ones the caller means).
        return main
    stem = path.stem
    name = stem if stem.isidentifier() and stem not in sys.modules else None
    if name is None:
        digest = hashlib.sha1(key.encode()).hexdigest()[:8]
        name = f"legato_flow_{stem if stem.isidentifier() else 'file'}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetNotFoundError(f"cannot load '{path_str}' as Python source")
    module = importlib.util.module_from_spec(spec)
    module.__legato_path__ = key  # type: ignore[attr-defined]
    # Sibling imports in the file work as they do under `python file.py`.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "prefect":
            hint = (
                "; this is Prefect code: run it with `legato run --prefect ...` or set "
                "LEGATO_PREFECT_SHIM=1 (README: Running Prefect code)"
            )
        raise TargetNotFoundError(
            f"importing '{path_str}' failed{_where(exc, path, path_str)}: "
            f"{type(exc).__name__}: {exc.msg if isinstance(exc, SyntaxError) else exc}{hint}"
        ) from exc
    _loaded_files[key] = module
    return module


def _where(exc: BaseException, path: Path, path_str: str) -> str:
    """`` at flows.py:12``: the last line of the user's file the error went through
    (for a syntax error, the line that does not parse), or nothing when none did."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        shown = path_str if Path(exc.filename).resolve() == path else exc.filename
        return f" at {shown}:{exc.lineno}"
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at {path_str}:{line}" if line is not None else ""


def object_ref(obj: Any) -> str:
    """A reference that finds a class again in another process: ``module:QualName``,
    or ``file:/abs/path.py:QualName`` for classes defined in a script."""
    module_name = getattr(obj, "__module__", "")
    module = sys.modules.get(module_name)
    path = getattr(module, "__legato_path__", None) or (
        getattr(module, "__file__", None) if module_name == "__main__" else None
    )
    if path:
        return f"file:{os.path.abspath(path)}:{obj.__qualname__}"
    return f"{module_name}:{obj.__qualname__}"


def resolve_ref(ref: str) -> Any:
    """The object named by an `object_ref` reference."""
    if ref.startswith("file:"):
        path, _, qualname = ref.removeprefix("file:").rpartition(":")
        main = sys.modules.get("__main__")
        main_file = getattr(main, "__file__", None)
        if main is not None and main_file and os.path.abspath(main_file) == path:
            obj: Any = main
        else:
            obj = load_file(path)
        where = path
    else:
        module_name, _, qualname = ref.partition(":")
        try:
            obj = importlib.import_module(module_name)
        except ImportError as exc:
            raise TargetNotFoundError(
                f"cannot import '{module_name}' to find {qualname}: {exc}"
            ) from None
        where = module_name
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise TargetNotFoundError(f"cannot find '{qualname}' in {where}")
    return obj


def source_module(fn: Any) -> str | None:
    return getattr(inspect.unwrap(fn), "__module__", None)
