"""A fork server: starting a run's process costs a fork, not an interpreter start.

The worker starts ``python -m legato.worker.forkserver`` once. That process
imports legato, stays single-threaded, and forks one child per run on request;
the child runs `legato.worker.child.main`. Requests and events are JSON lines
on the server's stdin and stdout:

    -> {"run_id": "...", "token": "...", "env": {...}, "warm": true, "reuse": 1234}
    -> {"retire": 1234}
    <- {"event": "started", "token": "...", "pid": 1234}
    <- {"event": "exited", "token": "...", "pid": 1234, "code": 0}   (-N: signal N)
    <- {"event": "exited", "token": "...", "pid": 1234, "code": 0, "idle": true}

A warm child, after its run, reports "done" on a pipe of its own and waits
for the next run of the same deployment instead of exiting (the worker picks
it with "reuse"; "retire" or the server's end closes that pipe and it exits).
Its run's end is reported as an exit marked idle; a crash (os._exit, a
signal) is a real exit and loses only the run it held.

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

import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
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


@dataclass
class _Link:
    """The fork server's pipes to a warm child (one that runs successive runs)."""

    to_child: int  # requests: one JSON line per run; -1 once closed (the child retires)
    from_child: int  # "done <code>" after each run
    buffer: bytes = b""

    def retire(self) -> None:
        """Close the request pipe: the child exits once idle. Marked closed, so that
        no later fork closes the number again once a new pipe reuses it."""
        if self.to_child >= 0:
            _close_quietly(self.to_child)
            self.to_child = -1


def _fork_child(request: dict[str, Any], links: dict[int, _Link]) -> tuple[int, _Link | None]:
    link: _Link | None = None
    inbound = outbound = -1
    if request.get("warm"):
        inbound, to_child = os.pipe()
        from_child, outbound = os.pipe()
        link = _Link(to_child, from_child)
    pid = os.fork()
    if pid:
        if link is not None:
            os.close(inbound)
            os.close(outbound)
        return pid, link
    code = 1
    try:  # in the child: never return into the server loop
        os.setsid()
        _die_with_parent()
        os.dup2(2, 1)  # stdout is the protocol pipe: write to stderr instead
        for other in [*links.values(), *([link] if link is not None else [])]:
            # a sibling must see EOF when the server closes its pipe
            other.retire()
            os.close(other.from_child)
        os.environ.clear()
        os.environ.update(request["env"])
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from legato.worker.child import main

        while True:
            os.environ["LEGATO_CLAIM_TOKEN"] = request["token"]
            code = main([request["run_id"]])
            if link is None:
                break
            sys.stdout.flush()
            sys.stderr.flush()
            os.write(outbound, f"done {code}\n".encode())
            line = _read_line(inbound)  # the next run, or EOF: retired
            if not line:
                code = 0
                break
            request = json.loads(line)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            from legato import tracing  # spans still in the exporter's queue

            tracing.flush()
        finally:
            os._exit(code)


def _read_line(fd: int) -> bytes:
    """One line from a pipe, read a byte at a time (nothing past it is consumed)."""
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            return b""
        line += byte
    return line


def _warm_up() -> None:
    """Do once here what every child's first flow would otherwise do itself.

    A flow and a task with typed parameters, validated once: this imports what
    decorating and validating need and loads pydantic's plugin list (a scan of
    every installed package's metadata). Each child inherits it all instead of
    paying ~35 ms of CPU for it per run (measured: 50 ms -> 14 ms per child).
    """
    from legato import flow, task

    @task
    def legato_forkserver_warm_up_task(x: int) -> int:
        return x

    @flow(name="legato-forkserver-warm-up")
    def legato_forkserver_warm_up(x: int = 0) -> int:
        return legato_forkserver_warm_up_task(x)

    legato_forkserver_warm_up.parameter_model.validate({"x": "1"}, coerce=True)


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
    _warm_up()

    children: dict[int, str] = {}  # pid -> claim token ("" while a warm child is idle)
    links: dict[int, _Link] = {}  # warm children's pipes, by pid
    stdin = sys.stdin.fileno()
    buffer = b""
    open_input = True
    while open_input or children:
        inputs = [stdin] if open_input else []
        by_fd = {link.from_child: pid for pid, link in links.items()}
        readable, _, _ = select.select(inputs + list(by_fd), [], [], 0.02)
        for fd in readable:
            if fd != stdin:
                _read_done(by_fd[fd], links[by_fd[fd]], children)
        if stdin in readable:
            chunk = os.read(stdin, 65536)
            if not chunk:
                open_input = False  # the worker is gone or done: finish the children
                for link in links.values():
                    link.retire()  # idle warm children exit on EOF
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                _handle(json.loads(line), children, links)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            token = children.pop(pid, "")
            gone = links.pop(pid, None)
            if gone is not None:
                gone.retire()
                _close_quietly(gone.from_child)
            code = os.waitstatus_to_exitcode(status)
            _send({"event": "exited", "token": token, "pid": pid, "code": code})


def _handle(request: dict[str, Any], children: dict[int, str], links: dict[int, _Link]) -> None:
    """A request from the worker: start a run (in a new or an idle warm child), or
    retire an idle warm child."""
    if "retire" in request:
        link = links.get(int(request["retire"]))
        if link is not None:
            link.retire()
        return
    reuse = request.get("reuse")
    if (
        reuse is not None
        and reuse in links
        and links[reuse].to_child >= 0
        and children.get(reuse) == ""
    ):
        line = json.dumps({"run_id": request["run_id"], "token": request["token"]}) + "\n"
        try:
            os.write(links[reuse].to_child, line.encode())
        except OSError:
            pass  # it died while idle (its exit is reported): start a new one instead
        else:
            children[reuse] = request["token"]
            _send({"event": "started", "token": request["token"], "pid": reuse})
            return
    pid, link = _fork_child(request, links)
    children[pid] = request["token"]
    if link is not None:
        links[pid] = link
    _send({"event": "started", "token": request["token"], "pid": pid})


def _read_done(pid: int, link: _Link, children: dict[int, str]) -> None:
    """A warm child finished its run: report it like an exit, marked idle."""
    try:
        chunk = os.read(link.from_child, 4096)
    except OSError:
        chunk = b""
    if not chunk:
        return  # it is exiting: waitpid reports it
    link.buffer += chunk
    while b"\n" in link.buffer:
        line, link.buffer = link.buffer.split(b"\n", 1)
        token = children.get(pid, "")
        children[pid] = ""
        code = int(line.split()[1])
        _send({"event": "exited", "token": token, "pid": pid, "code": code, "idle": True})


def _close_quietly(fd: int) -> None:
    """Close a pipe end that the other side (or an exiting child) may have closed."""
    with contextlib.suppress(OSError):
        os.close(fd)


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
        # (claim token, pid, code, idle): idle when a warm child finished its run and
        # waits for the next; the token is "" when an idle warm child exited
        self.exits: queue.Queue[tuple[str, int, int, bool]] = queue.Queue()
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
                self.exits.put(
                    (event["token"], int(event["pid"]), int(event["code"]), bool(event.get("idle")))
                )
        self._started.put({"event": "closed"})

    def spawn(
        self,
        run_id: str,
        token: str,
        env: dict[str, str],
        *,
        warm: bool = False,
        reuse: int | None = None,
    ) -> int:
        """Start ``run_id`` in the idle warm child ``reuse`` or, without one (or if it
        is gone), in a new child, warm (it waits for more runs after this one) or not;
        the child's pid."""
        request: dict[str, Any] = {"run_id": run_id, "token": token, "env": env, "warm": warm}
        if reuse is not None:
            request["reuse"] = reuse
        with self._lock:
            self._write(request)
            reply = self._started.get(timeout=30)
        if reply["event"] != "started":
            raise LegatoError("the worker's fork server has exited; restart the worker")
        return int(reply["pid"])

    def retire(self, pid: int) -> None:
        """Let the idle warm child ``pid`` exit (its exit is reported with no token)."""
        with self._lock:
            self._write({"retire": pid})

    def _write(self, request: dict[str, Any]) -> None:
        stdin = self._process.stdin
        if stdin is None or self._process.poll() is not None:
            raise LegatoError("the worker's fork server has exited; restart the worker")
        stdin.write((json.dumps(request) + "\n").encode())
        stdin.flush()

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
