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


def faults_spec() -> str | None:
    """``LEGATO_FAULTS``: fault injection for tests (see `legato.engine.faults`)."""
    raw = os.environ.get("LEGATO_FAULTS", "").strip()
    return raw or None


def args_fingerprint_enabled() -> bool:
    """``LEGATO_ARGS_FINGERPRINT``: record and check task arguments on replay (default on;
    0, false, no or off turns it off)."""
    raw = os.environ.get("LEGATO_ARGS_FINGERPRINT", "").strip().lower()
    return raw not in ("0", "false", "no", "off")
