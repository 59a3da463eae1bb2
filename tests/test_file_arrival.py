"""File arrival (`legato.events.FileTrigger`, `legato watch`) on a real folder, both backends:
once per new or changed file after it is stable, never for files there before (unless
asked), never twice across restarts; the CLI in a subprocess, stopped with SIGINT."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from _waiting import wait_until
from legato.errors import ConfigurationError
from legato.events import Event, FileTrigger
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "incoming"
    made.mkdir()
    return made


def arrived(store: Store) -> list[Event]:
    return store.list_events(names=["legato.file.arrived"], limit=1000)


def fire(trigger: FileTrigger, what: str) -> list[Event]:
    """Check until something fires; what fired."""
    fired: list[Event] = []

    def checked() -> bool:
        fired.extend(trigger.check())
        return bool(fired)

    wait_until(checked, timeout=20, what=what)
    return fired


def test_a_file_written_in_pieces_fires_once_after_it_is_stable(
    folder: Path, default_store: Store
) -> None:
    trigger = FileTrigger(folder, stable_seconds=0.3, store=default_store)
    trigger.start()
    target = folder / "orders.csv"
    with target.open("w") as stream:
        stream.write("id,total\n")
        stream.flush()
        assert trigger.check() == []  # first seen: not stable yet
        stream.write("1,20\n")
        stream.flush()
        last_change = time.monotonic()
        assert trigger.check() == []  # it changed: waits again
    [event] = fire(trigger, "the file to fire")
    assert time.monotonic() - last_change >= 0.3
    assert event.event == "legato.file.arrived"
    assert event.resource_id == f"legato.file.{target}"
    assert event.resource["path"] == str(target)
    assert event.resource["name"] == "orders.csv"
    assert event.resource["size"] == str(len("id,total\n1,20\n"))
    assert event.payload["size"] == len("id,total\n1,20\n")
    assert event.payload["mtime"].startswith("20")
    assert trigger.check() == []
    assert [e.id for e in arrived(default_store)] == [event.id]


def test_files_there_at_start_fire_only_when_asked(folder: Path, default_store: Store) -> None:
    (folder / "old.csv").write_text("old")
    (folder / "notes.txt").write_text("ignored by the pattern")
    trigger = FileTrigger(folder, pattern="*.csv", stable_seconds=0, store=default_store)
    trigger.start()
    (folder / "new.csv").write_text("new")
    (folder / "new.txt").write_text("ignored")
    fired = fire(trigger, "new.csv to fire")
    assert [e.resource["name"] for e in fired] == ["new.csv"]  # old.csv was seen by then

    including = FileTrigger(
        folder, pattern="*.csv", stable_seconds=0, include_existing=True, store=default_store
    )
    # new.csv fired before: its id is stored already, so only old.csv is new
    assert [e.resource["name"] for e in fire(including, "old.csv")] == ["old.csv"]
    assert sorted(e.resource["name"] for e in arrived(default_store)) == ["new.csv", "old.csv"]


def test_a_changed_file_fires_again(folder: Path, default_store: Store) -> None:
    trigger = FileTrigger(folder, stable_seconds=0, store=default_store)
    target = folder / "data.json"
    trigger.start()
    target.write_text("[1]")
    [first] = fire(trigger, "the first version")
    assert trigger.check() == []
    target.write_text("[1, 2, 3]")
    [second] = fire(trigger, "the changed file")
    assert second.id != first.id
    assert (first.payload["size"], second.payload["size"]) == (3, 9)
    assert trigger.check() == []


def test_a_restarted_watcher_does_not_fire_again(folder: Path, default_store: Store) -> None:
    (folder / "a.csv").write_text("a")
    first = FileTrigger(folder, stable_seconds=0, include_existing=True, store=default_store)
    assert len(fire(first, "a.csv")) == 1
    for _ in range(2):  # later processes, also asked to include what is there
        again = FileTrigger(folder, stable_seconds=0, include_existing=True, store=default_store)
        assert again.check() == []
        assert again.check() == []
    assert len(arrived(default_store)) == 1
    # and one not asked to include existing files ignores them altogether
    plain = FileTrigger(folder, stable_seconds=0, store=default_store)
    assert plain.check() == []


def test_run_watches_with_watchfiles_until_stopped(folder: Path, default_store: Store) -> None:
    seen: queue.Queue[Event] = queue.Queue()
    trigger = FileTrigger(folder, stable_seconds=0.2, store=default_store, on_event=seen.put)
    trigger.start()
    runner = threading.Thread(target=trigger.run)
    runner.start()
    try:
        (folder / "report.parquet").write_bytes(b"PAR1")
        event = seen.get(timeout=20)
        assert event.resource["name"] == "report.parquet"
    finally:
        trigger.stop()
        runner.join(timeout=20)
    assert not runner.is_alive()
    assert [e.id for e in arrived(default_store)] == [event.id]


def test_an_fsspec_url_is_polled(default_store: Store) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.mkdir("/h12-landing")
    try:
        fs.pipe("/h12-landing/before.csv", b"x")
        with pytest.raises(ConfigurationError, match="--poll"):
            FileTrigger("memory://h12-landing", store=default_store)
        trigger = FileTrigger(
            "memory://h12-landing", poll=0.05, stable_seconds=0, sha256=True, store=default_store
        )
        trigger.start()
        fs.pipe("/h12-landing/after.csv", b"hello")
        [event] = fire(trigger, "the new object")
        assert event.resource["name"] == "after.csv"
        assert event.resource_id.startswith("legato.file.memory://")
        assert event.resource_id.endswith("/h12-landing/after.csv")
        assert event.payload["size"] == 5
        assert event.payload["sha256"] == (
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        )
    finally:
        fs.rm("/h12-landing", recursive=True)


def _lines(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            found.put(line)

    reader = threading.Thread(target=pump)
    reader.start()
    return found, reader


def test_the_cli_emits_events_and_stops_on_sigint(folder: Path, default_store: Store) -> None:
    (folder / "there-before.csv").write_text("old")
    command = [sys.executable, "-m", "legato", "watch", str(folder), "--pattern", "*.csv"]
    command += ["--stable-seconds", "0.2", "--json"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    ) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        (errors, err_reader), (output, out_reader) = _lines(proc.stderr), _lines(proc.stdout)
        try:
            assert errors.get(timeout=30).startswith("watching ")  # it has looked at the folder
            (folder / "landed.csv").write_text("a,b\n1,2\n")
            event = json.loads(output.get(timeout=30))
            assert event["event"] == "legato.file.arrived"
            assert event["resource"]["name"] == "landed.csv"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            err_reader.join(timeout=30)
            out_reader.join(timeout=30)
    assert errors.get(timeout=1).startswith("stopped watching")
    assert output.empty()  # there-before.csv never fired
    assert [e.resource["name"] for e in arrived(default_store)] == ["landed.csv"]


def test_a_missing_extra_is_one_clear_line(folder: Path) -> None:
    code = (
        "import sys; sys.modules['watchfiles'] = None; "
        "from legato.cli.main import main; main(sys.argv[1:])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "watch", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: watching a folder needs the 'watchfiles' package, which is not installed; "
        "install it with: pip install 'legato[watch]'"
    ]
