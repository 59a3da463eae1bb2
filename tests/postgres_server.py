"""A real PostgreSQL server for the tests and the benchmarks, never a mock.

``get_server()`` gives one server per process (a pytest session): the one at
``LEGATO_TEST_DATABASE_URL`` when that is set (it must let its user create
databases), else a throwaway cluster started here with the distribution's
``initdb`` / ``pg_ctl`` on 127.0.0.1 at a free port, its data and socket in a
temporary folder, tuned for speed (``fsync=off`` and friends: nothing in it
needs to survive a power cut). ``stop_server()`` drops what was created and
deletes the cluster; an ``atexit`` hook does it too if nobody did.

Isolation is cheap: a template database gets the legato schema once, and
every test copies it with ``CREATE DATABASE ... TEMPLATE`` (a file copy, a
few milliseconds) and drops its copy afterwards.

This module knows nothing of pytest: ``ServerUnavailable`` says why no server
could be had, and the test fixtures decide whether that skips or fails.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

ENV_URL = "LEGATO_TEST_DATABASE_URL"
SECRET_ROLE = "legato_secret"


class ServerUnavailable(Exception):
    """No PostgreSQL server can be had on this machine; the message says why."""


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else the newest Debian/Ubuntu version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bindir = Path(initdb).parent
        version = bindir.parent.name
        if (bindir / "pg_ctl").exists() and version.isdigit():
            candidates.append((int(version), bindir))
    return max(candidates)[1] if candidates else None


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` instead (same server, user, options)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(dbname)))


def _memory_folder() -> str | None:
    """A memory-backed folder for the cluster when there is one (/dev/shm on Linux).

    Even with fsync off, creating a database on a disk file system costs
    ~250 ms of metadata work (measured on ext4), against ~15 ms in memory;
    a test that copies the template costs the same difference.
    """
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        stats = os.statvfs(shm)
        if stats.f_bavail * stats.f_frsize > 1 << 30:  # room for a few hundred test databases
            return shm
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet waited for) is as dead as it gets
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary folder, for this process only."""

    SETTINGS = {
        "listen_addresses": "'127.0.0.1'",
        # Test speed: no data here needs to survive an OS crash.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "300",
        "log_min_messages": "warning",
        "log_min_error_statement": "panic",
    }

    PREFIX = "legato-pg-"
    #: put the cluster in memory (/dev/shm) when possible; benchmarks of
    #: durable commits turn this off to measure a disk
    IN_MEMORY = True

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        parent = (_memory_folder() if self.IN_MEMORY else None) or tempfile.gettempdir()
        self._reap_orphans(Path(parent))
        self.folder = Path(tempfile.mkdtemp(prefix=self.PREFIX, dir=parent))
        (self.folder / "owner.pid").write_text(str(os.getpid()))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root: run them as the
            # distribution's "postgres" user, in a folder it owns.
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.folder, ignore_errors=True)
                raise ServerUnavailable(
                    "running as root and there is no 'postgres' user to run initdb as"
                ) from None
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser")
            self._as_user = [runuser, "-u", "postgres", "--"] if runuser else []
            if not runuser:
                shutil.rmtree(self.folder, ignore_errors=True)
                raise ServerUnavailable("running as root and runuser is missing")
            self._uid, self._gid = user.pw_uid, user.pw_gid
        else:
            self._uid, self._gid = os.getuid(), os.getgid()

    def _reap_orphans(self, parent: Path) -> None:
        """Stop and delete clusters left behind by test sessions that were killed."""
        for folder in parent.glob(self.PREFIX + "*"):
            try:
                owner = int((folder / "owner.pid").read_text())
            except (OSError, ValueError):
                continue
            if _alive(owner):
                continue
            if (folder / "data" / "postmaster.pid").exists():
                pg_ctl, data = str(self.bindir / "pg_ctl"), folder / "data"
                subprocess.run(
                    [
                        *self._as_user_for(folder),
                        pg_ctl,
                        "stop",
                        "-m",
                        "immediate",
                        "-D",
                        str(data),
                    ],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
            shutil.rmtree(folder, ignore_errors=True)

    def _as_user_for(self, folder: Path) -> list[str]:
        runuser = shutil.which("runuser")
        if os.geteuid() == 0 and runuser and folder.stat().st_uid != 0:
            return [runuser, "-u", pwd.getpwuid(folder.stat().st_uid).pw_name, "--"]
        return []

    @property
    def url(self) -> str:
        # The password is ignored (trust) but kept: URLs in the tests look real.
        return f"postgresql://postgres:{quote(self.password)}@127.0.0.1:{self.port}/postgres"

    def create_secret_role(self) -> str:
        """A role that must log in with a password, and the URL of a database it owns."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {SECRET_ROLE} LOGIN PASSWORD '{self.password}'")
            conn.execute(f"CREATE DATABASE {SECRET_ROLE} OWNER {SECRET_ROLE}")
        password = quote(self.password)
        return f"postgresql://{SECRET_ROLE}:{password}@127.0.0.1:{self.port}/{SECRET_ROLE}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_user, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.folder,
        )

    def start(self) -> None:
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n")
        os.chown(pwfile, self._uid, self._gid)
        done = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            # Trust, so that a test's connections cost no password exchange
            # (SCRAM costs milliseconds per connection on both sides) ...
            "--auth=trust",
            f"--pwfile={pwfile}",
            "--no-sync",
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise ServerUnavailable(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        # ... except for one role, which must give its password: the tests of
        # password handling log in as it (pg_hba.conf takes the first match).
        hba = self.data / "pg_hba.conf"
        rules = f"host all {SECRET_ROLE} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rules + hba.read_text())
        for _attempt in range(5):
            # The free port may be taken by someone else before the server binds it.
            self.port = _free_port()
            with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write("\n# legato test cluster\n")
                for key, value in self.SETTINGS.items():
                    conf.write(f"{key} = {value}\n")
                conf.write(f"port = {self.port}\n")
                conf.write(f"unix_socket_directories = '{self.folder}'\n")
            started = self._run(
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
            )
            if started.returncode == 0:
                return
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise ServerUnavailable(f"pg_ctl start failed: {started.stderr.strip()}\n{log}")

    def halt(self) -> None:
        """Stop the server abruptly, keeping its data (a server that went away)."""
        done = self._run(
            str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate"
        )
        if done.returncode != 0:
            raise ServerUnavailable(f"pg_ctl stop failed: {done.stderr.strip()}")

    def restart(self) -> None:
        """Start a halted server again, on the same port."""
        started = self._run(
            str(self.bindir / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log), "-w"
        )
        if started.returncode != 0:
            log = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            raise ServerUnavailable(f"pg_ctl start failed: {started.stderr.strip()}\n{log}")

    def stop(self) -> None:
        if self.data.exists():
            # immediate: nothing in a throwaway cluster is worth a checkpoint.
            self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresServer:
    """A server with a template database holding the legato schema."""

    def __init__(
        self,
        admin_url: str,
        cluster: ThrowawayCluster | None = None,
        password_url: str | None = None,
    ) -> None:
        self.admin_url = admin_url
        self.cluster = cluster
        #: a URL whose server really checks its password (None when unknown)
        self.password_url = password_url
        self.prefix = f"legato_t{secrets.token_hex(3)}_"
        self.template = self.prefix + "template"
        self._created: set[str] = set()
        self._lock = threading.Lock()
        self._counter = 0
        self._pending_drops: list[str] = []
        self._admin_conn: Any = None  # a psycopg connection, imported lazily
        self.version = 0  # server_version_num, known once connected

    # --- admin statements --------------------------------------------------------

    def admin(self, sql: str) -> None:
        """Run a statement on the admin database (autocommit, so CREATE DATABASE works)."""
        import psycopg

        with self._lock:
            conn = self._admin_conn
            if conn is None or conn.closed:
                conn = self._admin_conn = psycopg.connect(self.admin_url, autocommit=True)
                self.version = conn.info.server_version
            conn.execute(sql)

    def url(self, dbname: str) -> str:
        return with_database(self.admin_url, dbname)

    def _new_name(self) -> str:
        with self._lock:
            self._counter += 1
            return f"{self.prefix}{os.getpid()}_{self._counter}"

    def setup_template(self) -> None:
        from legato.store.postgres import PostgresStore

        self.admin(f"CREATE DATABASE \"{self.template}\" TEMPLATE template0 ENCODING 'UTF8'")
        self._created.add(self.template)
        PostgresStore(self.url(self.template)).close()

    # --- databases for tests -------------------------------------------------------

    def create_database(self, *, empty: bool = False) -> str:
        """A new database (a copy of the template, or ``empty`` of any schema); its URL."""
        self._drop_pending()
        name = self._new_name()
        source = "template0" if empty else self.template
        # FILE_COPY copies the template's files instead of WAL-logging every
        # block: faster for a small template on a cluster without fsync (and
        # what servers before 15, which have no STRATEGY, always do).
        strategy = " STRATEGY FILE_COPY" if self.version >= 150000 else ""
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}"{strategy}')
        self._created.add(name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database soon: before the next one is created, or at the end.

        Dropping at once would wait ~100 ms for the backends of the store just
        closed to exit (the server polls for them every 100 ms); by the next
        test they are gone.
        """
        with self._lock:
            self._pending_drops.append(urlsplit(url).path.lstrip("/"))

    def _drop_pending(self) -> None:
        with self._lock:
            names, self._pending_drops = self._pending_drops, []
        for name in names:
            # FORCE (13+) ends connections a failing test may have left behind.
            force = " WITH (FORCE)" if self.version >= 130000 else ""
            self.admin(f'DROP DATABASE IF EXISTS "{name}"{force}')
            self._created.discard(name)

    @contextlib.contextmanager
    def database(self, *, empty: bool = False) -> Iterator[str]:
        url = self.create_database(empty=empty)
        try:
            yield url
        finally:
            self.drop_database(url)

    def stop(self) -> None:
        if self.cluster is None:
            with contextlib.suppress(Exception):
                self._drop_pending()
            for name in sorted(self._created):
                with contextlib.suppress(Exception):
                    force = " WITH (FORCE)" if self.version >= 130000 else ""
                    self.admin(f'DROP DATABASE IF EXISTS "{name}"{force}')
        with self._lock:
            conn, self._admin_conn = self._admin_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        if self.cluster is not None:
            self.cluster.stop()


_server: PostgresServer | None = None
_failure: ServerUnavailable | None = None
_start_lock = threading.Lock()


def _start() -> PostgresServer:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ServerUnavailable(
            "psycopg is not installed: pip install -e '.[test]' (it includes the postgres extra)"
        ) from None
    url = os.environ.get(ENV_URL, "").strip()
    cluster = None
    if url:
        server = PostgresServer(url, password_url=url)
    else:
        bindir = find_bindir()
        if bindir is None:
            raise ServerUnavailable(
                f"no PostgreSQL binaries (initdb, pg_ctl) on PATH or under "
                f"/usr/lib/postgresql/*/bin and {ENV_URL} is not set; install the "
                f"'postgresql' package (scripts/test.sh does) or point {ENV_URL} at a server"
            )
        cluster = ThrowawayCluster(bindir)
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        try:
            secret_url = cluster.create_secret_role()
        except Exception as exc:
            cluster.stop()
            raise ServerUnavailable(f"cannot create the test role: {exc}") from exc
        server = PostgresServer(cluster.url, cluster, password_url=secret_url)
    try:
        server.setup_template()
    except ServerUnavailable:
        server.stop()
        raise
    except Exception as exc:
        server.stop()
        raise ServerUnavailable(f"cannot prepare the test template database: {exc}") from exc
    return server


def get_server() -> PostgresServer:
    """The process's test server, started on first use; raises ServerUnavailable."""
    global _server, _failure
    with _start_lock:
        if _server is not None:
            return _server
        if _failure is not None:
            raise _failure  # do not retry a slow failure for every test
        try:
            _server = _start()
        except ServerUnavailable as exc:
            _failure = exc
            raise
        atexit.register(stop_server)
        return _server


def unavailable_reason() -> str | None:
    """Why PostgreSQL was unavailable, if a start was tried and failed."""
    return None if _failure is None else str(_failure)


def stop_server() -> None:
    global _server
    with _start_lock:
        server, _server = _server, None
    if server is not None:
        server.stop()


def require_server() -> PostgresServer:
    """The test server; skips the calling test when there is none, fails in CI.

    CI must run the PostgreSQL tests (scripts/test.sh installs the server), so
    there a missing server is an error; on a developer's machine the tests are
    skipped and the session's summary says so (tests/conftest.py).
    """
    import pytest

    try:
        return get_server()
    except ServerUnavailable as exc:
        reason = str(exc)
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")
