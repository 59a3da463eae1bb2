"""PostgreSQL URLs and secrets: the password never shows, a missing extra says what to do.

Runs against the session's real server (tests/postgres_server.py) where a
server is needed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from legato.errors import MissingExtraError, StoreError
from legato.store import open_store
from legato.store.postgres.urls import display_url
from postgres_server import PostgresServer, require_server, with_database


@pytest.fixture
def server() -> PostgresServer:
    return require_server()


@pytest.fixture
def url(server: PostgresServer) -> Iterator[str]:
    """A database with the legato schema (a copy of the template)."""
    with server.database() as created:
        yield created


@pytest.fixture
def empty_url(server: PostgresServer) -> Iterator[str]:
    """A database without any legato table."""
    with server.database(empty=True) as created:
        yield created


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql://u:s3cret@db:5432/legato", "postgresql://u:***@db:5432/legato"),
        ("postgres://u:s3cret@db/legato", "postgres://u:***@db/legato"),
        ("postgresql+psycopg://u:s3cret@db/x", "postgresql://u:***@db/x"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
        ("postgresql://db/x?sslmode=require", "postgresql://db/x?sslmode=require"),
        ("postgresql://u@db/x?password=s3cret&sslmode=require", None),
        ("postgresql://u:p%40ss%3Aw0rd@h1:5432,h2:5433/x", "postgresql://u:***@h1:5432,h2:5433/x"),
        ("postgresql://u:s3cret@[::1]:5432/x", "postgresql://u:***@[::1]:5432/x"),
    ],
)
def test_display_url_never_shows_a_password(given: str, shown: str | None) -> None:
    displayed = display_url(given)
    if shown is not None:
        assert displayed == shown
    for secret in ("s3cret", "p%40ss%3Aw0rd", "p@ss:w0rd"):
        assert secret not in displayed
    assert "***" in displayed or ":" not in given.split("@")[0].split("//")[1]


def test_store_url_hides_the_password(url: str) -> None:
    password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    store = open_store(url)
    try:
        assert store.backend == "postgresql"
        assert store.display_url == display_url(url)
        if password:
            assert str(password) not in store.display_url
            assert ":***@" in store.display_url
            assert str(password) not in repr(store)
    finally:
        store.close()


def test_wrong_password_error_shows_neither_password(
    server: PostgresServer, empty_url: str
) -> None:
    if server.password_url is None:
        pytest.skip("no URL with a password to test against")
    right = str(psycopg.conninfo.conninfo_to_dict(server.password_url).get("password") or "")
    if not right:
        pytest.skip("the test server's URL has no password in it")
    wrong = "wr0ng-" + uuid.uuid4().hex
    # A disposable database: should the server not check passwords, nothing else is touched.
    bad_url = with_database(
        server.password_url.replace(f":{right}@", f":{wrong}@", 1),
        urlsplit(empty_url).path.lstrip("/"),
    )
    try:
        open_store(bad_url).close()
    except StoreError as exc:
        caught = exc
    else:
        pytest.skip("the test server does not check passwords")
    message = str(caught)
    assert "password authentication failed" in message
    assert wrong not in message and right not in message
    assert display_url(bad_url) in message
    assert caught.__cause__ is None  # psycopg's own text is not chained
    # A server that is not there: the message still names the store, masked.
    gone = f"postgresql://u:{wrong}@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(StoreError) as refused:
        open_store(gone)
    assert wrong not in str(refused.value)
    assert "postgresql://u:***@127.0.0.1:1/db" in str(refused.value)


def test_malformed_url_error_hides_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://u:hunter2secret@db/x?nonsense_option=1")
    assert "hunter2secret" not in str(caught.value)
    assert "postgresql://u:***@db/x" in str(caught.value)


_WITHOUT_PSYCOPG = textwrap.dedent(
    """
    import sys
    sys.modules["psycopg"] = None  # "import psycopg" now raises ImportError
    sys.modules["psycopg_pool"] = None
    import legato
    from legato.errors import MissingExtraError
    from legato.store import open_store
    try:
        open_store("postgresql://user:hunter2secret@db.example:5432/legato")
    except MissingExtraError as exc:
        print(exc)
    else:
        print("no error")
    """
)


def test_missing_extra_is_one_clear_line() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PSYCOPG],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    message = done.stdout.strip()
    assert message.count("\n") == 0
    assert "pip install 'legato[postgres]'" in message
    assert "psycopg" in message
    assert "postgresql://user:***@db.example:5432/legato" in message
    assert "hunter2secret" not in message
    assert MissingExtraError.__name__  # the class the child caught


def test_import_legato_does_not_import_psycopg(tmp_path: Path) -> None:
    code = (
        "import sys, legato, legato.store, legato.store.postgres\n"
        "from legato.store import open_store\n"
        f"open_store({str(tmp_path / 'x.db')!r}).close()\n"
        "print('psycopg' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
