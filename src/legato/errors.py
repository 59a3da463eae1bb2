"""Every error legato raises.

One root, `LegatoError`. Each message says what happened, to which run or
task, and what to do next. Control-flow signals that user code must not
swallow with ``except Exception`` (pause, cancellation) derive from
`BaseException` instead and live at the bottom of this module.
"""

from __future__ import annotations

from typing import Any


class LegatoError(Exception):
    """Root of every error legato raises on purpose."""


# --- configuration and input -------------------------------------------------


class ConfigurationError(LegatoError):
    """A setting (environment variable, URL, option) is invalid."""


class PrefectImportUnsupported(LegatoError, ImportError):
    """A ``prefect`` module or name that legato's Prefect shim does not map
    (`legato.prefect_shim`)."""


class PrefectAttributeUnsupported(LegatoError, AttributeError):
    """A missing attribute of a module served by legato's Prefect shim."""


class MissingExtraError(ConfigurationError):
    """An optional dependency is needed but not installed."""

    def __init__(self, extra: str, package: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed; "
            f"install it with: pip install 'legato[{extra}]'"
        )


class ParameterValidationError(LegatoError):
    """Flow parameters do not match the flow's signature or type hints."""

    def __init__(self, flow_name: str, problems: list[str]) -> None:
        self.flow_name = flow_name
        self.problems = problems
        joined = "; ".join(problems)
        super().__init__(f"invalid parameters for flow '{flow_name}': {joined}")


class ScheduleError(ConfigurationError):
    """A schedule (cron, interval, RRULE, time zone) is invalid."""


class LimitNotFoundError(ConfigurationError):
    """No global limit has the name asked for."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no limit named '{name}'; list them with `legato limit ls`")


class InvalidVariableError(ConfigurationError, ValueError):
    """A variable's name or value cannot be stored (wrong characters, not JSON, too long)."""


class InvalidEventError(ConfigurationError, ValueError):
    """An event cannot be stored: a bad name, resource, related resource or payload."""


class InvalidAutomationError(ConfigurationError, ValueError):
    """An automation spec that does not validate (the message names the field's path)."""


class AutomationNotFoundError(ConfigurationError):
    """No automation has that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no automation named '{name}'; list them with `legato automation ls`")


class VariableExistsError(ConfigurationError):
    """`Variable.set` without ``overwrite`` found the name already taken."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"variable '{name}' already exists; pass overwrite=True to replace it "
            f"(`legato variable set {name} VALUE --overwrite`)"
        )


class VariableNotFoundError(ConfigurationError):
    """No variable has the name asked for."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"no variable named '{name}'; list them with `legato variable ls`, or create "
            f"it with `legato variable set {name} VALUE`"
        )


class InvalidArtifactError(ConfigurationError, ValueError):
    """An artifact's key, description or data cannot be stored."""


class InvalidTransactionKeyError(ConfigurationError, ValueError):
    """``transaction(key=...)`` got a key that cannot name a keyed transaction."""


class DeploymentNotFoundError(LegatoError):
    """No deployment has the name asked for."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"no deployment named '{name}'; list them with `legato deployments`, or create "
            f"it with `legato deploy path/to/file.py:flow --name {name}`"
        )


class TargetNotFoundError(LegatoError):
    """A `path/to/file.py:flow` or `package.module:flow` target cannot be loaded."""


class RunNotFoundError(LegatoError):
    """No run matches the given id or id prefix."""

    def __init__(self, prefix: str, *, kind: str = "flow run") -> None:
        self.prefix = prefix
        if kind == "flow run":
            hint = "list runs with `legato runs` and copy an id"
        else:
            hint = f"list the run's {kind}s with `legato show RUN`"
        super().__init__(f"no {kind} matches '{prefix}'; {hint}")


class AmbiguousRunIdError(LegatoError):
    """More than one run starts with the given prefix."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        self.prefix = prefix
        self.matches = matches
        shown = ", ".join(matches[:5])
        super().__init__(
            f"run id prefix '{prefix}' is ambiguous (matches {shown}); give more characters"
        )


class InvalidRunInputError(LegatoError):
    """Input given to a paused run does not validate against its RunInput model."""

    def __init__(self, run_id: str, model_name: str, problems: list[str]) -> None:
        self.run_id = run_id
        self.model_name = model_name
        self.problems = problems
        super().__init__(
            f"input for paused run {run_id} does not match {model_name}: "
            f"{'; '.join(problems)}; the run stays paused, resume it again with valid input"
        )


# --- run lifecycle -------------------------------------------------------------


class RunStateError(LegatoError):
    """The run is not in a state that allows the requested action."""


class FlowRunFailed(LegatoError):
    """Raised by `State.result()` for a failed run whose original exception is unknown."""


# The models legato.input wraps plain values in, and what each value is.
_PLAIN_INPUTS = {
    "StrInput": "a string",
    "IntInput": "an integer",
    "FloatInput": "a number",
    "BoolInput": "true or false",
    "ListInput": "a list",
    "DictInput": "an object",
}


class FlowPaused(LegatoError):
    """Calling a flow raised this because the run paused and now waits durably.

    The process is free; the run resumes with ``legato resume RUN_ID`` (with
    ``--input JSON`` when it waits for input) or ``legato.resume_flow_run``.
    """

    def __init__(self, run_id: str, key: str, input_model: str | None) -> None:
        self.run_id = run_id
        self.key = key
        self.input_model = input_model
        plain = _PLAIN_INPUTS.get(input_model or "")
        if plain is not None:  # wait_for_input=str and the like: the value is wrapped
            how = f"legato resume {run_id} --input '{{\"value\": <{plain}>}}'"
        elif input_model:
            how = f"legato resume {run_id} --input '<json for {input_model}>'"
        else:
            how = f"legato resume {run_id}"
        super().__init__(f"flow run {run_id} paused at '{key}'; resume it with: {how}")


class FlowCancelled(LegatoError):
    """Calling a flow raised this because its run was cancelled."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"flow run {run_id} was cancelled")


class FlowCrashed(LegatoError):
    """The run's process died, or the engine itself failed, while it ran."""


class RunLostError(FlowCrashed):
    """What a flow call returns (as a crashed state) when this process lost its run
    to another process, or saw it marked crashed or cancelled by someone else."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(str(RunStopped(run_id, lost=True)))


class NonDeterministicFlowError(LegatoError):
    """On replay, the call at a call key is not the one recorded there: another task,
    or the same task with other arguments."""

    def __init__(
        self,
        run_id: str,
        call_key: str,
        recorded: str,
        called: str,
        *,
        recorded_args: str | None = None,
        called_args: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.call_key = call_key
        self.recorded_args = recorded_args
        self.called_args = called_args
        if recorded_args is None:
            super().__init__(
                f"flow run {run_id} is not deterministic: call key '{call_key}' was "
                f"recorded for task '{recorded}' but the flow now calls '{called}' there; "
                f"the flow code changed since the run started. Undo the change to resume "
                f"this run, or start a new run"
            )
            return
        super().__init__(
            f"flow run {run_id} is not deterministic: task '{called}' at call key "
            f"'{call_key}' was recorded with arguments {recorded_args} and is now called "
            f"with {called_args}, so its recorded result may belong to another call. Make "
            f"the flow call its tasks in the same order with the same arguments, or resume "
            f"with --on-changed-args rerun (run such calls again) or replay (keep the "
            f"recorded results)"
        )


class TaskTimeoutError(LegatoError, TimeoutError):
    """A task ran longer than its `timeout_seconds`."""

    def __init__(self, task_name: str, seconds: float) -> None:
        self.task_name = task_name
        self.seconds = seconds
        super().__init__(f"task '{task_name}' timed out after {seconds:g}s (timeout_seconds)")


class FlowTimeoutError(LegatoError, TimeoutError):
    """A flow ran longer than its `timeout_seconds`."""

    def __init__(self, flow_name: str, seconds: float) -> None:
        self.flow_name = flow_name
        self.seconds = seconds
        super().__init__(f"flow '{flow_name}' timed out after {seconds:g}s (timeout_seconds)")


class PausedRunTimeoutError(LegatoError):
    """A paused run was not resumed before its pause timeout."""


class ResultNotSerializableError(LegatoError):
    """A task or flow returned a value its result serializer cannot store."""

    def __init__(self, what: str, value_type: str, serializer: str, reason: str) -> None:
        self.value_type = value_type
        super().__init__(
            f"{what} returned a {value_type}, which the '{serializer}' result serializer "
            f"cannot store ({reason}); return something serializable, pick another "
            f"result_serializer, or set persist_result=False"
        )


class ResultNotAvailableError(LegatoError):
    """A stored result cannot be read back (missing, or not persisted)."""


class UpstreamTaskFailedError(LegatoError):
    """A task did not run because a future it depends on did not complete."""

    def __init__(self, task_name: str, upstream_key: str, upstream_state: str) -> None:
        self.task_name = task_name
        self.upstream_key = upstream_key
        super().__init__(
            f"task '{task_name}' did not run: its upstream task {upstream_key} is "
            f"{upstream_state}; fix the upstream failure and resume the run"
        )


class TaskCallError(LegatoError):
    """A task was called where it cannot run (for example outside any flow)."""


class TaskArgumentNotPicklableError(LegatoError):
    """An argument of a task sent to another process cannot be pickled."""

    def __init__(
        self, task_name: str, call_key: str, parameter: str, value_type: str, reason: str
    ) -> None:
        self.task_name = task_name
        self.parameter = parameter
        self.value_type = value_type
        super().__init__(
            f"task '{task_name}' ({call_key}): its argument '{parameter}' is a {value_type}, "
            f"which cannot be pickled to send it to a ProcessPoolTaskRunner process "
            f"({reason}); pass something picklable (open files, connections and locks inside "
            f"the task instead) or run this task on ThreadPoolTaskRunner"
        )


class RemoteTaskError(LegatoError):
    """A task body in another process failed (or returned a value) in a way that cannot
    be pickled back to the flow's process; carries the type, message and traceback text."""

    def __init__(self, task_name: str, what: str, traceback_text: str) -> None:
        self.task_name = task_name
        self.traceback_text = traceback_text
        super().__init__(
            f"task '{task_name}' {what}; make it picklable (or run the task on "
            f"ThreadPoolTaskRunner)" + (f"\n{traceback_text}" if traceback_text else "")
        )


class StoreError(LegatoError):
    """The state store failed in a way legato could not recover from."""


class StoreUnavailableError(StoreError):
    """The store could not be reached for longer than the retry window."""

    def __init__(self, where: str, seconds: float, reason: str) -> None:
        self.where = where
        self.seconds = seconds
        super().__init__(
            f"the store {where} could not be reached for {seconds:g}s ({reason}); what a "
            f"run in progress did until then is saved, the rest is not: once the store is "
            f"back the run reads as crashed, and `legato resume RUN` completes it (raise "
            f"LEGATO_PG_RETRY_SECONDS to ride out longer outages)"
        )


class SchemaVersionError(StoreError):
    """The database was written by a newer legato than this one."""


class RunOwnershipLost(StoreError):
    """Another process took over this run (it was resumed elsewhere)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"flow run {run_id} is no longer owned by this process (another process took "
            f"it over, or it was marked crashed or cancelled meanwhile); this process "
            f"stops writing to it"
        )


# --- signals that user code must not swallow ----------------------------------


class _Signal(BaseException):
    """Base of control-flow signals; not an `Exception`, so `except Exception` misses it."""


class CancelledRun(_Signal):
    """Raised inside a flow at its next task boundary after cancellation was requested."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"flow run {run_id} was cancelled")


class PauseSignal(_Signal):
    """Unwinds a flow body to suspend the run at a pause point."""

    def __init__(self, key: str, detail: Any = None) -> None:
        self.key = key
        self.detail = detail
        super().__init__(f"pause at '{key}'")


class SleepSignal(_Signal):
    """Unwinds a worker's flow body for a long `legato.sleep`: the run is queued again
    for when the sleep ends, and its worker slot is free meanwhile."""

    def __init__(self, key: str, until: float) -> None:
        self.key = key
        self.until = until
        super().__init__(f"sleep at '{key}' until {until}")


class RunStopped(_Signal):
    """Unwinds a flow body whose run this process must stop working on: the run
    was taken over by another process, marked crashed or cancelled by someone
    else (``lost``), or it already ended here (its timeout fired). Nothing more
    is written for it; this is not a cancellation."""

    def __init__(self, run_id: str, *, lost: bool) -> None:
        self.run_id = run_id
        self.lost = lost
        if lost:
            message = (
                f"this process no longer owns flow run {run_id} (another process took it "
                f"over, or it was marked crashed or cancelled meanwhile); it stops here and "
                f"writes nothing more: `legato show {run_id}` tells what the run is doing now"
            )
        else:
            message = f"flow run {run_id} has ended; no further task may start in it"
        super().__init__(message)


class StoreLost(_Signal):
    """Unwinds a flow body when the store became unreachable: nothing more can be
    recorded, so no further task may run. Carries the `StoreUnavailableError`."""

    def __init__(self, error: StoreUnavailableError) -> None:
        self.error = error
        super().__init__(str(error))


class WebhookNotFoundError(LegatoError):
    """No webhook has this slug (or it is disabled, for a request)."""

    def __init__(self, slug: str, *, disabled: bool = False) -> None:
        self.slug = slug
        if disabled:
            message = f"webhook '{slug}' is disabled: enable it with `legato webhook enable {slug}`"
        else:
            message = f"no webhook '{slug}': `legato webhook ls` lists them"
        super().__init__(message)


class WebhookExistsError(ConfigurationError):
    """`legato webhook create` found the slug taken."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(
            f"webhook '{slug}' exists already: pass --overwrite to replace it, or choose "
            "another slug"
        )


class WebhookAuthError(LegatoError):
    """A webhook request is not authenticated: ``status`` 401 (no credential) or 403
    (a wrong one), or 503 when the server lacks the webhook's secret."""

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


class WebhookTemplateError(ConfigurationError):
    """A webhook's template cannot be compiled or rendered into an event."""


class NotificationChannelNotFoundError(ConfigurationError):
    """No notification channel has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"no notification channel named '{name}'; list them with `legato notify channel ls`"
        )


class NotificationSendError(LegatoError):
    """One attempt to send a notification failed; ``retry_after`` is the delay the
    receiver asked for (``Retry-After``), if any. The sender retries it with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class RunExportError(ConfigurationError):
    """A run export (`legato export`) cannot be read: not JSON, not an export, or a
    format version this legato does not know."""


class SimulatedCrash(BaseException):
    """A process death simulated in this process (`legato.testing.crash_at`): raised at
    a task record boundary, not an `Exception`, so user code does not catch it. The
    call it hits gets no final record, as a killed process would leave it; resume the
    run (`legato.testing.resume`) to continue it."""

    def __init__(self, where: str) -> None:
        self.where = where
        super().__init__(
            f"simulated crash {where} (fault injection); resume the run to continue it"
        )


class CommandFailedError(LegatoError):
    """A wrapped command (`legato wrap`, a command deployment) exited with a non-zero code."""

    def __init__(self, argv: list[str], code: int) -> None:
        self.argv = argv
        self.code = code
        super().__init__(
            f"command {' '.join(argv)!r} exited with code {code}; its output is in the "
            f"run's logs (`legato logs RUN`)"
        )


class ObservedRunError(RunStateError):
    """An observed run (`legato wrap`, `legato.observe`) cannot be resumed or replayed."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"flow run {run_id} is an observed run (recorded by legato wrap or "
            f"legato.observe): it has no flow to replay; run the command or script again"
        )


class CrashMatrixFailed(LegatoError, AssertionError):
    """`legato.testing.crash_matrix` found a crash point after which the resumed run
    differed from an uncrashed one, or a side effect that ran more than once."""


class ModelError(LegatoError):
    """A model provider did not give an answer."""


class ModelRateLimitError(ModelError):
    """The provider refused for now (HTTP 429); ``retry_after`` is the wait it asked for."""

    def __init__(
        self, provider: str, model: str, retry_after: float | None, detail: str = ""
    ) -> None:
        self.provider = provider
        self.model = model
        self.retry_after = retry_after
        wait = f" and asked to wait {retry_after:g} s" if retry_after is not None else ""
        super().__init__(
            f"{provider} rate-limited the request to {model}{wait}"
            f"{': ' + detail if detail else ''}; the call is retried under its task's retry "
            "options (raise retries=, or add a global limit: legato limit set NAME N --per S)"
        )


class ModelUnavailableError(ModelError):
    """The provider failed (HTTP 5xx, connection error, timeout): worth retrying."""


class ModelRequestRejectedError(ModelError):
    """The provider refused the request (bad key, unknown model, invalid request):
    retrying the same request would fail the same way."""


class LLMValidationError(LegatoError):
    """The model's answers failed validation on every try."""


class LLMBudgetExceeded(LegatoError):
    """A flow run's model budget (``llm_budget=``) would be exceeded by the next call."""


class PromptVersionAmbiguousError(ConfigurationError):
    """More than one stored version of a prompt starts with the given prefix."""

    def __init__(self, name: str, prefix: str, matches: list[str]) -> None:
        self.name = name
        self.prefix = prefix
        self.matches = matches
        shown = ", ".join(matches[:5])
        super().__init__(
            f"prompt '{name}' version prefix '{prefix}' is ambiguous (matches {shown}); "
            "give more characters of the version"
        )


class PromptNotFoundError(LegatoError):
    """No stored prompt has the given name, or it has no such version."""

    def __init__(self, name: str, version: str | None = None) -> None:
        self.name = name
        self.version = version
        if version is None:
            message = f"no prompt named '{name}' is stored; list prompts with `legato prompts ls`"
        else:
            message = (
                f"prompt '{name}' has no version '{version}'; list its versions with "
                f"`legato prompts show {name}`"
            )
        super().__init__(message)
