"""Run Prefect code unchanged: an import hook that serves ``prefect`` from legato.

``install()`` appends a finder to the end of ``sys.meta_path``. Python asks it
about ``prefect`` only when no other finder found the name, so an installed
``prefect`` package always wins and the hook stays out of the way. When it
does serve ``prefect``, the mapped submodules (``prefect.logging``,
``prefect.states``, ``prefect.runtime.flow_run``...) are thin modules that read
their attributes from the matching legato module at each access (so
``prefect.runtime.flow_run.id`` is the current run's id, as in Prefect).

Anything else fails with one line naming it: importing an unmapped submodule
(``prefect.blocks``) raises `PrefectImportUnsupported`, an `ImportError`;
reading a name a mapped module lacks raises `PrefectAttributeUnsupported`, an
`AttributeError`, and ``from prefect import missing_name`` the ImportError.

Ways in: ``python -m legato.prefect script.py``, ``legato run --prefect
file.py:flow``, ``LEGATO_PREFECT_SHIM=1`` for ``legato run``/``resume`` and
worker children, or ``legato.prefect_shim.install()`` in a test.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from legato.errors import PrefectAttributeUnsupported, PrefectImportUnsupported

__all__ = ["MODULES", "TOP_LEVEL", "install", "installed", "unsupported_message"]

# prefect submodule -> the legato module it is served from.
MODULES: dict[str, str] = {
    "prefect.artifacts": "legato.artifacts",
    "prefect.cache_policies": "legato.cache_policies",
    "prefect.context": "legato.context",
    "prefect.events": "legato.events",
    "prefect.flow_runs": "legato.flow_runs",
    "prefect.flows": "legato.flows",
    "prefect.futures": "legato.futures",
    "prefect.input": "legato.input",
    "prefect.logging": "legato.logging",
    "prefect.runtime": "legato.runtime",
    "prefect.runtime.flow_run": "legato.runtime.flow_run",
    "prefect.runtime.task_run": "legato.runtime.task_run",
    "prefect.states": "legato.states",
    "prefect.task_runners": "legato.task_runners",
    "prefect.tasks": "legato.tasks",
    "prefect.transactions": "legato.transactions",
    "prefect.variables": "legato.variables",
    # Prefect's integration packages (top-level names, served like the submodules).
    "prefect_dask": "legato.task_runners.dask",
    "prefect_ray": "legato.task_runners.ray",
}

# Names of Prefect's top level that legato has: name -> (legato module, attribute).
TOP_LEVEL: dict[str, tuple[str, str]] = {
    "Flow": ("legato.flows", "Flow"),
    "State": ("legato.states", "State"),
    "Task": ("legato.tasks", "Task"),
    "Transaction": ("legato.transactions", "Transaction"),
    "flow": ("legato.flows", "flow"),
    "get_run_logger": ("legato.logging", "get_run_logger"),
    "pause_flow_run": ("legato.flow_runs", "pause_flow_run"),
    "resume_flow_run": ("legato.flow_runs", "resume_flow_run"),
    "suspend_flow_run": ("legato.flow_runs", "suspend_flow_run"),
    "tags": ("legato.tags", "tags"),
    "task": ("legato.tasks", "task"),
    "unmapped": ("legato.futures", "unmapped"),
}

_MARK = "__legato_prefect_shim__"


def unsupported_message(name: str) -> str:
    """The one line for a ``prefect`` module or name legato does not map."""
    return f'{name} is not supported by legato (see README "Running Prefect code")'


def _is_shim(module: object) -> bool:
    return getattr(module, _MARK, False) is True


def _mapped(fullname: str) -> bool:
    """Whether ``fullname`` is a mapped submodule whose legato module exists."""
    return fullname in MODULES and importlib.util.find_spec(MODULES[fullname]) is not None


def _child(parent: str, name: str) -> ModuleType | None:
    """``parent.name`` imported, when it is a mapped submodule."""
    full = f"{parent}.{name}"
    if _mapped(full):
        return importlib.import_module(full)
    return None


def _missing(parent: str, name: str) -> AttributeError:
    if name.startswith("_"):
        # Dunder probes (``__file__``, ``__wrapped__``...) get the usual error.
        return AttributeError(f"module {parent!r} has no attribute {name!r}")
    return PrefectAttributeUnsupported(unsupported_message(f"{parent}.{name}"))


def _module_getattr(fullname: str, target: ModuleType) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        child = _child(fullname, name)
        if child is not None:
            return child
        if not name.startswith("_"):
            try:
                return getattr(target, name)
            except AttributeError:
                pass
        raise _missing(fullname, name)

    return __getattr__


def _public_names(target: ModuleType) -> list[str]:
    names = getattr(target, "__all__", None)
    if names is not None:
        return list(names)
    return sorted(
        name
        for name, value in vars(target).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == target.__name__
    )


def _top_getattr(name: str) -> Any:
    if name in TOP_LEVEL:
        module_name, attr = TOP_LEVEL[name]
        return getattr(importlib.import_module(module_name), attr)
    child = _child("prefect", name)
    if child is not None:
        return child
    raise _missing("prefect", name)


def _fill(module: ModuleType) -> None:
    name = module.__name__
    children = sorted(
        m.rpartition(".")[2] for m in MODULES if m.rpartition(".")[0] == name and _mapped(m)
    )
    namespace = vars(module)
    namespace[_MARK] = True
    if name == "prefect":
        public = sorted(TOP_LEVEL)
        namespace["__getattr__"] = _top_getattr
        namespace["__doc__"] = "Prefect's top level, served by legato (legato.prefect_shim)."
    else:
        target = importlib.import_module(MODULES[name])
        public = _public_names(target)
        namespace["__getattr__"] = _module_getattr(name, target)
        namespace["__doc__"] = target.__doc__
    namespace["__all__"] = public
    listing = sorted({*public, *children})
    namespace["__dir__"] = lambda: listing


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return ModuleType(spec.name)

    def exec_module(self, module: ModuleType) -> None:
        _fill(module)


class PrefectFinder(importlib.abc.MetaPathFinder):
    """Serves ``prefect`` and its mapped submodules when nothing else provides them."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "prefect":
            return importlib.machinery.ModuleSpec(fullname, _LOADER, is_package=True)
        if "." not in fullname and _mapped(fullname):  # an integration package
            return importlib.machinery.ModuleSpec(fullname, _LOADER, is_package=True)
        if not fullname.startswith("prefect.") or not _is_shim(sys.modules.get("prefect")):
            return None  # not ours, or the real prefect is the one imported
        if _mapped(fullname):
            return importlib.machinery.ModuleSpec(fullname, _LOADER, is_package=True)
        # Name the first unmapped level: prefect.blocks for prefect.blocks.system.
        parts = fullname.split(".")
        prefix = next(
            (name for d in range(2, len(parts)) if not _mapped(name := ".".join(parts[:d]))),
            fullname,
        )
        raise PrefectImportUnsupported(unsupported_message(prefix), name=prefix)


_LOADER = _Loader()


def installed() -> bool:
    """Whether the hook is on ``sys.meta_path``."""
    return any(isinstance(finder, PrefectFinder) for finder in sys.meta_path)


def install() -> None:
    """Put the hook at the end of ``sys.meta_path`` (once; calling again does nothing)."""
    if not installed():
        sys.meta_path.append(PrefectFinder())
