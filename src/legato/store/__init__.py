"""State stores: the abstract contract and a function that opens one from a URL."""

from __future__ import annotations

import os
import threading

from legato.errors import ConfigurationError, MissingExtraError
from legato.settings import database_url
from legato.store.base import Store

__all__ = ["Store", "get_default_store", "open_store", "reset_default_store"]

# What a store URL may be; said in full whenever one is refused.
ACCEPTED_URLS = (
    "sqlite:///path/to/legato.db, postgresql://user:password@host:5432/db (or postgres://), "
    "or the path of a SQLite file ending in .db, .sqlite or .sqlite3 (or one that exists)"
)
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")

_default: Store | None = None
_default_url: str | None = None
_lock = threading.Lock()


def open_store(url: str | None = None) -> Store:
    """Open (creating and migrating if needed) the store at ``url``.

    ``url`` defaults to ``LEGATO_DATABASE_URL``, else the SQLite file under
    ``LEGATO_HOME``. Accepted: ``sqlite:///abs/path.db``, ``sqlite:///:memory:``
    is refused (runs must outlive the process), a plain file path ending in
    ``.db``, ``.sqlite`` or ``.sqlite3`` or naming a file that exists, or
    ``postgresql://user:password@host:5432/db`` (also ``postgres://``), which
    needs the ``postgres`` extra. Anything else is a ConfigurationError listing
    these forms: a typo must not quietly start an empty store.
    """
    url = url or database_url()
    from legato.store.postgres.urls import display_url, is_postgres_url, libpq_url

    if is_postgres_url(url):
        _check_postgres_url(libpq_url(url))
        try:
            from legato.store.postgres.store import PostgresStore
        except ImportError as exc:
            if not (exc.name or "").startswith("psycopg") and "psycopg" not in str(exc):
                raise
            raise MissingExtraError(
                "postgres", "psycopg", f"the PostgreSQL store {display_url(url)}"
            ) from None
        return PostgresStore(url)
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        path = path.removeprefix("/") if path.startswith("//") else path
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigurationError(
            f"unsupported store URL scheme '{scheme}://' in LEGATO_DATABASE_URL; "
            f"give {ACCEPTED_URLS}"
        )
    else:
        path = url
        if path not in ("", ":memory:") and not (
            path.endswith(_SQLITE_SUFFIXES) or os.path.isfile(path)
        ):
            raise ConfigurationError(
                f"the store location {url!r} (LEGATO_DATABASE_URL) is neither a store URL "
                f"nor a SQLite file; give {ACCEPTED_URLS}"
            )
    if not path or path == ":memory:":
        raise ConfigurationError(
            "an in-memory SQLite store cannot hold durable runs; give a file path, "
            "e.g. sqlite:///tmp/legato.db"
        )
    from legato.store.sqlite import SQLiteStore

    return SQLiteStore(path)


def _check_postgres_url(url: str) -> None:
    """A ConfigurationError when ``url`` cannot be parsed; the message never repeats
    the URL, which may hold a password."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # parsing the port is what raises
    except ValueError as exc:
        raise ConfigurationError(
            f"the PostgreSQL URL in LEGATO_DATABASE_URL cannot be read ({exc}); write it as "
            f"postgresql://user:password@host:5432/db, with an IPv6 host in brackets "
            f"([::1]) and special characters of the password %-encoded"
        ) from None


def get_default_store() -> Store:
    """The process-wide store for the configured URL, opened on first use.

    Re-opened when ``LEGATO_DATABASE_URL`` / ``LEGATO_HOME`` changed since.
    """
    global _default, _default_url
    url = database_url()
    store = _default
    if store is not None and _default_url == url:
        return store
    with _lock:
        if _default is None or _default_url != url:
            if _default is not None:
                _default.close()
            _default = open_store(url)
            _default_url = url
        return _default


def reset_default_store() -> None:
    """Close the process-wide store (tests and forked processes use this)."""
    global _default, _default_url
    with _lock:
        if _default is not None:
            _default.close()
        _default = None
        _default_url = None
