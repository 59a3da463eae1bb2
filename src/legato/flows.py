"""The ``@flow`` decorator and the `Flow` object."""

from __future__ import annotations

import copy
import inspect
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from types import MethodType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from legato._hooks import HookList
from legato._methods import binding_target, unwrap_method
from legato.engine.params import ParameterModel
from legato.engine.results import check_serializer
from legato.errors import ConfigurationError
from legato.task_runners import ThreadPoolTaskRunner

if TYPE_CHECKING:
    from legato.deadlines import Deadline
    from legato.records import Deployment

P = ParamSpec("P")
R = TypeVar("R")
Hook = Callable[..., Any]

# Flows defined in this process, by name: lets a run be resumed in the process
# that defined its flow even when no entrypoint can load it elsewhere.
_registry: dict[str, weakref.ref[Flow[Any, Any]]] = {}
_registry_lock = threading.Lock()


def registered_flow(name: str) -> Flow[Any, Any] | None:
    ref = _registry.get(name)
    found = ref() if ref is not None else None
    if found is not None and found._bound_before:
        return None  # a method: its runs need the instance (resume_flow_run(..., flow=))
    return found


class Flow(Generic[P, R]):
    """A function whose calls are recorded as durable, resumable flow runs."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        tags: Iterable[str] | None = None,
        retries: int = 0,
        retry_delay_seconds: float = 0,
        timeout_seconds: float | None = None,
        log_prints: bool = False,
        flow_run_name: str | Callable[[], str] | None = None,
        validate_parameters: bool = True,
        task_runner: ThreadPoolTaskRunner | type[ThreadPoolTaskRunner] | None = None,
        persist_result: bool = True,
        result_serializer: str = "pickle",
        on_completion: Sequence[Hook] | None = None,
        on_failure: Sequence[Hook] | None = None,
        on_crashed: Sequence[Hook] | None = None,
        on_cancellation: Sequence[Hook] | None = None,
        on_running: Sequence[Hook] | None = None,
        deadlines: Sequence[Deadline] | None = None,
        triggers: Sequence[Any] | None = None,
        llm_budget: Any = None,
    ) -> None:
        # `@flow` over `@classmethod`/`@staticmethod`: bound as that kind (see __get__).
        fn, self._method_kind = unwrap_method(fn)
        # Set once bound to an instance or class: this process cannot rebuild that
        # binding for a stored run, so resuming one needs the bound flow passed in.
        self._bound_before = False
        self._bound_model: ParameterModel | None = None
        if not callable(fn):
            raise ConfigurationError(f"@flow needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "flow"))
        self.description = description or inspect.getdoc(fn)
        self.version = version
        self.tags: tuple[str, ...] = tuple(tags or ())
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ConfigurationError(
                f"flow '{self.name}': retries must be a whole number >= 0, got {retries!r}"
            )
        self.retries = retries
        if not isinstance(retry_delay_seconds, (int, float)) or retry_delay_seconds < 0:
            raise ConfigurationError(
                f"flow '{self.name}': retry_delay_seconds must be a number >= 0, "
                f"got {retry_delay_seconds!r}"
            )
        self.retry_delay_seconds = float(retry_delay_seconds)
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ConfigurationError(
                f"flow '{self.name}': timeout_seconds must be > 0, got {timeout_seconds!r}"
            )
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.flow_run_name = flow_run_name
        self.validate_parameters = validate_parameters
        if task_runner is None:
            runner = ThreadPoolTaskRunner()
        elif isinstance(task_runner, type):
            runner = task_runner()
        else:
            runner = task_runner
        if not hasattr(runner, "submit") or not hasattr(runner, "duplicate"):
            raise ConfigurationError(
                f"flow '{self.name}': task_runner must be a task runner such as "
                f"ThreadPoolTaskRunner(), got {task_runner!r}"
            )
        self.task_runner = runner
        self.persist_result = persist_result
        self.result_serializer = check_serializer(result_serializer)
        # Lists that are also decorators: `@my_flow.on_failure` registers a hook.
        # (Typed as lists: the engine mixes them with plain lists.)
        self.on_completion: list[Hook] = HookList(on_completion or ())
        self.on_failure: list[Hook] = HookList(on_failure or ())
        self.on_crashed: list[Hook] = HookList(on_crashed or ())
        self.on_cancellation: list[Hook] = HookList(on_cancellation or ())
        self.on_running: list[Hook] = HookList(on_running or ())
        # legato.Deadline: stored with each run this flow creates (the leader's sweeps).
        self.deadlines: tuple[Deadline, ...] = ()
        if deadlines is not None:  # loaded only by flows that have deadlines
            from legato.deadlines import check_deadlines

            self.deadlines = check_deadlines(deadlines, f"flow '{self.name}'")
        # legato.DeploymentEventTrigger: the triggers of every deployment of this flow
        # that names none (stored as automations when it is deployed).
        self.triggers: tuple[Any, ...] = ()
        if triggers:
            from legato.automations.deployment_triggers import check_triggers

            self.triggers = check_triggers(triggers, f"flow '{self.name}'")
        # legato.ai.Budget: checked before each model call of a run (legato.ai.call).
        self.llm_budget: Any = None
        if llm_budget is not None:  # loaded only by flows that have a budget
            from legato.ai.budget import check_budget

            self.llm_budget = check_budget(llm_budget, f"flow '{self.name}'")
        self.is_async = inspect.iscoroutinefunction(fn)
        self.parameter_model = ParameterModel(fn, self.name)
        if log_prints:
            from legato.engine.logs import install_print_capture

            install_print_capture()
        self._options = {
            "name": name,
            "description": description,
            "version": version,
            "tags": tags,
            "retries": retries,
            "retry_delay_seconds": retry_delay_seconds,
            "timeout_seconds": timeout_seconds,
            "log_prints": log_prints,
            "flow_run_name": flow_run_name,
            "validate_parameters": validate_parameters,
            "task_runner": task_runner,
            "persist_result": persist_result,
            "result_serializer": result_serializer,
            "on_completion": on_completion,
            "on_failure": on_failure,
            "on_crashed": on_crashed,
            "on_cancellation": on_cancellation,
            "on_running": on_running,
            "deadlines": deadlines,
            "triggers": triggers,
            "llm_budget": llm_budget,
        }
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn
        with _registry_lock:
            _registry[self.name] = weakref.ref(self)

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """``obj.method``: this flow bound to ``obj`` (or its class), as a function
        would be; the bound copy shares every option, and its parameters leave out
        ``self``/``cls``."""
        target = binding_target(self._method_kind, instance, owner)
        if target is None:
            return self
        self._bound_before = True
        bound = copy.copy(self)
        bound.fn = MethodType(self.fn, target)
        model = self._bound_model
        if model is None:
            model = self._bound_model = ParameterModel(bound.fn, self.name)
        bound.parameter_model = model
        return bound

    def deploy(self, name: str, **options: Any) -> Deployment:
        """Create or update the deployment ``name`` of this flow; workers run its runs.

        Options: ``cron``, ``interval`` (seconds), ``rrule`` (each a value or a
        list), ``timezone``, ``parameters``, ``work_queue``, ``priority``,
        ``tags``, ``concurrency_limit``, ``collision_strategy``
        (``"enqueue"`` or ``"cancel_new"``), ``description``, ``catchup``,
        ``paused``; and Prefect's ``work_pool_name`` (the work queue),
        ``build=False``, ``push=False``. Images (``image``, ``build=True``,
        ``push=True``, ``job_variables``) are refused: legato runs flows from
        their source with workers. The flow must live at the top level of a
        module or script so that a worker can import it.
        """
        from legato.serving import deploy_flow

        return deploy_flow(self, name, **options)

    def serve(self, name: str | None = None, **options: Any) -> None:
        """Deploy this flow and run a worker for it in this process until stopped.

        ``name`` defaults to the flow's. Takes the options of `deploy`, plus
        ``concurrency`` (or Prefect's ``limit``; default 4), ``global_limit``
        (the deployment's concurrency limit) and ``work_queue`` (default: the
        deployment's name). In a script, call it
        under ``if __name__ == "__main__":`` (workers import the script to run
        the flow, and must not start serving again).
        """
        from legato.serving import serve_flow

        serve_flow(self, name, **options)

    @classmethod
    def from_source(cls, source: str | os.PathLike[str], entrypoint: str) -> Flow[Any, Any]:
        """The flow at ``entrypoint`` (``path/to/file.py:function``, relative to the
        local folder ``source``), as Prefect's ``flow.from_source``; ``.deploy()``
        it to run it on workers. Git URLs and remote storage are refused."""
        from legato.serving import flow_from_source

        return flow_from_source(source, entrypoint)

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise ConfigurationError(
                f"unknown flow option(s) {', '.join(sorted(unknown))}; "
                f"valid options: {', '.join(sorted(self._options))}"
            )
        # Hooks registered since (by the decorator forms) carry over to the copy.
        hooks = {
            "on_completion": self.on_completion,
            "on_failure": self.on_failure,
            "on_crashed": self.on_crashed,
            "on_cancellation": self.on_cancellation,
            "on_running": self.on_running,
        }
        return Flow(self.fn, **{**self._options, **hooks, **options})

    def run_name_for(self, params: dict[str, Any], run_id: str) -> str:
        template = self.flow_run_name
        if callable(template):
            return str(template())
        if template is None:
            return f"{self.name}-{run_id[:8]}"
        try:
            return template.format(**params)
        except (KeyError, IndexError, ValueError):
            return template

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow in this process and return its result (raising on failure).

        ``return_state=True`` returns the final `State` instead. Inside another
        flow this creates a child run linked to its parent.
        """
        from legato.engine.calls import call_flow

        return_state = bool(kwargs.pop("return_state", False))
        return call_flow(self, args, kwargs, return_state)


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(__fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Decorate a function as a flow: ``@flow`` or ``@flow(retries=2, ...)``."""
    if __fn is not None:
        return Flow(__fn, **options)

    def decorator(fn: Callable[P, R]) -> Flow[P, R]:
        return Flow(fn, **options)

    return decorator
