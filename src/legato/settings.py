"""Where legato keeps its state, read from the environment.

- ``LEGATO_HOME``: folder for the embedded SQLite store (default ``~/.legato``).
- ``LEGATO_DATABASE_URL``: overrides the store location: ``sqlite:///path/to/legato.db``,
  ``postgresql://user:password@host:5432/db`` (or ``postgres://``), or the path of a
  SQLite file ending in .db, .sqlite or .sqlite3 (or one that exists). Anything else
  is refused when the store opens (`legato.store.open_store`), never taken for a file.
"""

from __future__ import annotations

import os
from pathlib import Path


def legato_home() -> Path:
    raw = os.environ.get("LEGATO_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".legato"


def database_url() -> str:
    """The configured store URL; the SQLite file under LEGATO_HOME by default."""
    raw = os.environ.get("LEGATO_DATABASE_URL", "").strip()
    if raw:
        return raw
    return f"sqlite:///{legato_home() / 'legato.db'}"


def spool_dir() -> Path:
    """Where `legato wrap` spools runs it could not record (LEGATO_SPOOL_DIR)."""
    raw = os.environ.get("LEGATO_SPOOL_DIR", "").strip()
    return Path(raw).expanduser() if raw else legato_home() / "spool"


def wrap_grace_seconds() -> float:
    """How long a wrapped command's process group has between SIGTERM and SIGKILL."""
    return env_float("LEGATO_WRAP_GRACE_SECONDS", 5.0)


def env_float(name: str, default: float) -> float:
    """A positive number from the environment, or ``default`` when unset."""
    from legato.errors import ConfigurationError

    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{name}={raw!r} is not a number; set it to seconds, e.g. 30"
        ) from None
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} must be greater than 0")
    return value


def env_flag(name: str) -> bool:
    """True when the variable is set to 1, true, yes or on (any case)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def prefect_shim_enabled() -> bool:
    """``LEGATO_PREFECT_SHIM``: `legato run`, `legato resume` and worker children serve
    ``import prefect`` from legato (see `legato.prefect_shim`)."""
    return env_flag("LEGATO_PREFECT_SHIM")


def otel_enabled() -> bool:
    """Traces (`legato.tracing`, the ``otel`` extra): on when ``OTEL_EXPORTER_OTLP_ENDPOINT``
    is set (spans go there over OTLP/HTTP) or ``LEGATO_OTEL=1``."""
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()) or env_flag(
        "LEGATO_OTEL"
    )


def otel_endpoint_set() -> bool:
    """Is ``OTEL_EXPORTER_OTLP_ENDPOINT`` set (legato then exports spans over OTLP/HTTP)?"""
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def otel_record_params() -> bool:
    """``LEGATO_OTEL_RECORD_PARAMS=1``: flow run spans carry the run's parameters."""
    return env_flag("LEGATO_OTEL_RECORD_PARAMS")


def faults_spec() -> str | None:
    """``LEGATO_FAULTS``: fault injection for tests (see `legato.engine.faults`)."""
    raw = os.environ.get("LEGATO_FAULTS", "").strip()
    return raw or None


def args_fingerprint_enabled() -> bool:
    """``LEGATO_ARGS_FINGERPRINT``: record and check task arguments on replay (default on;
    0, false, no or off turns it off)."""
    raw = os.environ.get("LEGATO_ARGS_FINGERPRINT", "").strip().lower()
    return raw not in ("0", "false", "no", "off")


AGE_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float | None:
    """Seconds in an age like ``90s``, ``15m``, ``12h``, ``7d`` or ``2w``; None when
    ``text`` is not one (or not more than 0)."""
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        return None
    return float(match.group(1)) * AGE_UNIT_SECONDS[match.group(2)]


def event_retention_seconds() -> float:
    """``LEGATO_EVENT_RETENTION``: how long events are kept (default ``7d``); the
    worker that leads the scheduler and `legato db prune` delete older ones."""
    from legato.errors import ConfigurationError

    raw = os.environ.get("LEGATO_EVENT_RETENTION", "").strip() or "7d"
    seconds = parse_age(raw)
    if seconds is None:
        raise ConfigurationError(
            f"LEGATO_EVENT_RETENTION={raw!r} is not an age: write a number and a unit, "
            "like 12h, 7d or 2w"
        )
    return seconds


def secret_from_env(name: str) -> str | None:
    """The value of the environment variable ``name`` that holds a secret (a webhook's
    or a channel's), or None when it is unset or empty."""
    value = os.environ.get(name, "")
    return value or None


def ui_url() -> str | None:
    """``LEGATO_UI_URL``: the server's base URL as people reach it (e.g.
    ``https://legato.example.com``), for links to run pages in notifications."""
    raw = os.environ.get("LEGATO_UI_URL", "").strip()
    return raw.rstrip("/") or None


def notify_max_attempts() -> int:
    """``LEGATO_NOTIFY_MAX_ATTEMPTS``: attempts per notification delivery before it is dead
    (default 8)."""
    return max(1, int(env_float("LEGATO_NOTIFY_MAX_ATTEMPTS", 8)))


def notify_backoff_seconds() -> tuple[float, float]:
    """``LEGATO_NOTIFY_BACKOFF`` (the first retry's delay, default 30 s, doubling after each
    failure) and ``LEGATO_NOTIFY_BACKOFF_CAP`` (the longest delay, default 1200 s): eight
    attempts then span about an hour."""
    return env_float("LEGATO_NOTIFY_BACKOFF", 30.0), env_float("LEGATO_NOTIFY_BACKOFF_CAP", 1200.0)


def notify_timeout() -> float:
    """``LEGATO_NOTIFY_TIMEOUT``: seconds one notification request may take (default 10)."""
    return env_float("LEGATO_NOTIFY_TIMEOUT", 10.0)


def late_after_seconds() -> float:
    """``LEGATO_LATE_AFTER``: seconds after its scheduled time a run not started yet is
    late (default 15): the leader then emits ``legato.flow-run.Late`` for it, once."""
    return env_float("LEGATO_LATE_AFTER", 15.0)


def _byte_size(name: str, default: int) -> int:
    """A size in bytes from the environment: 1048576, 512k, 4M or 1G (powers of 1024)."""
    from legato.errors import ConfigurationError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = raw.lower().removesuffix("ib").removesuffix("b")
    scale = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigurationError(
            f"{name}={raw!r} is not a size; set it to bytes, e.g. 1048576, 512k or 4M"
        )
    return value


def remote_result_threshold() -> int:
    """``LEGATO_REMOTE_RESULT_THRESHOLD``: a remote task body's pickled result larger than
    this many bytes goes to result storage, and only its reference comes back (default 1M)."""
    return _byte_size("LEGATO_REMOTE_RESULT_THRESHOLD", 1024**2)


def result_storage() -> str:
    """``LEGATO_RESULT_STORAGE``: where large remote results are written: a folder or an
    fsspec URL such as ``s3://bucket/legato`` (default ``$LEGATO_HOME/results``)."""
    raw = os.environ.get("LEGATO_RESULT_STORAGE", "").strip()
    if not raw:
        return str(legato_home() / "results")
    if "://" in raw:
        return raw.rstrip("/")
    return str(Path(raw).expanduser().resolve())


def metrics_cache_seconds() -> float:
    """How long `/metrics` reuses one snapshot of the store (LEGATO_METRICS_CACHE_SECONDS)."""
    return env_float("LEGATO_METRICS_CACHE_SECONDS", 5.0)


def metrics_token() -> str | None:
    """A bearer token that may scrape `/metrics` (LEGATO_METRICS_TOKEN), besides the API's."""
    return os.environ.get("LEGATO_METRICS_TOKEN", "").strip() or None


def ai_prices_file() -> Path | None:
    """A JSON file of model prices overriding the built-in table (LEGATO_AI_PRICES)."""
    raw = os.environ.get("LEGATO_AI_PRICES", "").strip()
    return Path(raw).expanduser() if raw else None


def _env_text(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def openai_base_url() -> str | None:
    """``OPENAI_BASE_URL``: an OpenAI-compatible endpoint (vLLM, Ollama, LM Studio...)
    for `legato.ai.providers.OpenAIClient`; the OpenAI API when unset."""
    return _env_text("OPENAI_BASE_URL")


def openai_api_key() -> str | None:
    """``OPENAI_API_KEY``: the key `legato.ai.providers.OpenAIClient` sends."""
    return _env_text("OPENAI_API_KEY")


def anthropic_base_url() -> str | None:
    """``ANTHROPIC_BASE_URL``: where `legato.ai.providers.AnthropicClient` sends requests."""
    return _env_text("ANTHROPIC_BASE_URL")


def anthropic_api_key() -> str | None:
    """``ANTHROPIC_API_KEY``: the key `legato.ai.providers.AnthropicClient` sends."""
    return _env_text("ANTHROPIC_API_KEY")


def ai_timeout_seconds() -> float:
    """``LEGATO_AI_TIMEOUT_SECONDS``: how long one model request may take (default 120)."""
    return env_float("LEGATO_AI_TIMEOUT_SECONDS", 120.0)
