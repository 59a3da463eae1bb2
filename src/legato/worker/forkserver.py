"""A fork server: starting a run's process costs a fork, not an interpreter start.

The worker starts ``python -m legato.worker.forkserver`` once. That process
imports legato, stays single-threaded, and forks one child per run on request;
the child runs `legato.worker.child.main`. Requests and events are JSON lines
on the server's stdin and stdout:

    -> {"run_id": "...", "token": "...", "env": {...}}
    <- {"event": "started", "token": "...", "pid": 1234}
    <- {"event": "exited", "token": "...", "pid": 1234, "code": 0}   (-N: signal N)

A child is named by its claim token, not its run id: a worker may claim a run
again while an old process of that run (stuck, its lease lapsed) still exists.

Each child leads a session of its own (the worker signals its process group)
and, on Linux, is killed when the fork server dies; the fork server exits
when the worker closes its stdin or dies. Children write to the worker's
stderr (the server's stdout carries the protocol).

Python's own multiprocessing fork server re-imports the worker's ``__main__``
in every child (a user's script serving a flow would run again), hence this.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
from typing import Any

from legato.errors import LegatoError


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# --- the server process ---------------------------------------------------------------


def _send(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _fork_child(request: dict[str, Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # in the child: never return into the server loop
        os.setsid()
        _die_with_parent()
        os.dup2(2, 1)  # stdout is the protocol pipe: write to stderr instead
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["LEGATO_CLAIM_TOKEN"] = request["token"]
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from legato.worker.child import main

        code = main([request["run_id"]])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    """The fork server's loop (runs in its own process)."""
    _die_with_parent()
    # Preloaded once for every child: what running any flow needs.
    import asyncio  # noqa: F401
    import logging  # noqa: F401

    import cloudpickle  # noqa: F401
    from pydantic import BaseModel, ConfigDict, create_model  # noqa: F401 - typed flows

    import legato.engine.calls
    import legato.store.sqlite
    import legato.worker.child

    if os.environ.get("LEGATO_DATABASE_URL", "").startswith("postgres"):
        import legato.store.postgres.store  # noqa: F401

    children: dict[int, str] = {}  # pid -> claim token
    stdin = sys.stdin.fileno()
    buffer = b""
    open_input = True
    while open_input or children:
        readable, _, _ = select.select([stdin] if open_input else [], [], [], 0.02)
        if readable:
            chunk = os.read(stdin, 65536)
            if not chunk:
                open_input = False  # the worker is gone or done: finish the children
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = _fork_child(request)
                children[pid] = request["token"]
                _send({"event": "started", "token": request["token"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            token = children.pop(pid, "")
            code = os.waitstatus_to_exitcode(status)
            _send({"event": "exited", "token": token, "pid": pid, "code": code})


# --- the worker's side ------------------------------------------------------------------


class ForkServer:
    """The worker's handle on its fork server."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "legato.worker.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self._started: queue.Queue[dict[str, Any]] = queue.Queue()
        self.exits: queue.Queue[tuple[str, int]] = queue.Queue()  # (claim token, code)
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="legato-forkserver", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        out = self._process.stdout
        if out is None:
            return
        for line in out:
            event = json.loads(line)
            if event["event"] == "started":
                self._started.put(event)
            else:
                self.exits.put((event["token"], int(event["code"])))
        self._started.put({"event": "closed"})

    def spawn(self, run_id: str, token: str, env: dict[str, str]) -> int:
        """Start the process for ``run_id``; its pid."""
        request = json.dumps({"run_id": run_id, "token": token, "env": env}) + "\n"
        with self._lock:
            stdin = self._process.stdin
            if stdin is None or self._process.poll() is not None:
                raise LegatoError("the worker's fork server has exited; restart the worker")
            stdin.write(request.encode())
            stdin.flush()
            reply = self._started.get(timeout=30)
        if reply["event"] != "started":
            raise LegatoError("the worker's fork server has exited; restart the worker")
        return int(reply["pid"])

    def close(self) -> None:
        if self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    serve()
