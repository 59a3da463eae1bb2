"""Cache policies (Prefect 3's): INPUTS, TASK_SOURCE, FLOW_PARAMETERS, RUN_ID, NO_CACHE,
DEFAULT, composed with + and -, from_cache_key_fn, refresh_cache, cache_expiration."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from _waiting import wait_until
from legato import flow, task
from legato.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CachePolicy,
    stable_hash,
)
from legato.errors import ConfigurationError, TaskCallError
from legato.records import TaskRun, utcnow
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


def newest_task_runs(store: Store) -> list[TaskRun]:
    return store.list_task_runs(store.list_flow_runs(limit=1)[0].id)


def test_inputs_hits_for_equal_inputs_and_misses_for_others(default_store: Store) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @flow
    def f(x: int) -> int:
        return square(x)

    assert f(3) == 9
    assert f(3) == 9  # another run, equal inputs: the stored result
    assert f(4) == 16
    assert calls == [3, 4]
    (tr,) = newest_task_runs(default_store)
    assert not tr.cached and tr.cache_key is not None


def test_task_source_misses_after_the_function_changes(tmp_path: Path) -> None:
    calls: list[str] = []

    def load(name: str, body: str) -> Any:
        path = tmp_path / f"{name}.py"
        path.write_text(
            "from legato import task\n"
            "from legato.cache_policies import TASK_SOURCE\n\n\n"
            "@task(cache_policy=TASK_SOURCE)\n"
            "def compute(calls):\n"
            f"    calls.append({name!r})\n"
            f"    return {body}\n"
        )
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.compute

    def run(compute: Any) -> Any:
        @flow
        def f() -> Any:
            return compute(calls)

        return f()

    v1 = load("v1", "1")
    assert run(v1) == 1
    assert run(v1) == 1  # same source: hit (TASK_SOURCE ignores the inputs)
    v2 = load("v2", "2")
    assert run(v2) == 2  # edited source: a fresh cache
    assert calls == ["v1", "v2"]


def test_flow_parameters_key_on_the_flow_runs_parameters() -> None:
    calls: list[int] = []

    @task(cache_policy=FLOW_PARAMETERS)
    def lookup(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f(region: str, x: int) -> int:
        return lookup(x)

    assert f("eu", 1) == 1
    assert f("us", 1) == 1
    assert f("eu", 1) == 1  # hit
    assert f("eu", 2) == 2  # different flow parameters: miss
    assert calls == [1, 1, 2]

    @flow
    def no_params() -> int:
        return lookup(5)

    no_params()
    no_params()  # no parameters, no key: never cached
    assert calls == [1, 1, 2, 5, 5]


def test_run_id_scopes_entries_to_one_flow_run(default_store: Store) -> None:
    calls: list[int] = []

    @task(cache_policy=RUN_ID)
    def once_per_run(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> list[int]:
        return [once_per_run(1), once_per_run(2)]

    assert f() == [1, 1]  # RUN_ID ignores inputs: the second call is a hit
    assert f() == [1, 1]  # a new run: its own entry
    assert calls == [1, 1]
    assert [t.cached for t in newest_task_runs(default_store)] == [False, True]


def test_no_cache_never_caches_and_adds_nothing() -> None:
    calls: list[int] = []

    @task(cache_policy=NO_CACHE)
    def always(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> None:
        always(1)
        always(1)

    f()
    assert calls == [1, 1]
    assert always.cache_policy is None
    assert NO_CACHE + INPUTS == INPUTS and INPUTS + NO_CACHE == INPUTS
    # NO_CACHE says "no caching", so it goes with persist_result=False.
    task(cache_policy=NO_CACHE, persist_result=False)(lambda: None)


def test_subtracting_an_input_leaves_it_out_of_the_key() -> None:
    calls: list[tuple[int, bool]] = []

    @task(cache_policy=INPUTS - "debug")
    def work(x: int, debug: bool = False) -> int:
        calls.append((x, debug))
        return x

    @flow
    def f() -> None:
        work(1, debug=False)
        work(1, debug=True)  # hit: debug is not part of the key
        work(2, debug=True)

    f()
    assert calls == [(1, False), (2, True)]
    assert repr(INPUTS - "debug" - "verbose") == "INPUTS - 'debug' - 'verbose'"
    assert TASK_SOURCE - "debug" == TASK_SOURCE  # no inputs in it: unchanged
    with pytest.raises(TypeError, match="name"):
        INPUTS - 3  # type: ignore[operator]


def test_composed_policy_needs_every_part_equal() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS + FLOW_PARAMETERS)
    def work(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f(tenant: str, x: int) -> int:
        return work(x)

    f("a", 1)
    f("a", 1)  # hit
    f("b", 1)  # parameters differ: miss
    f("a", 2)  # inputs differ: miss
    assert calls == [1, 1, 2]


def test_compound_parts_without_a_key_are_skipped() -> None:
    calls: list[str] = []

    @task(cache_policy=INPUTS + RUN_ID)
    def no_args() -> str:
        calls.append("ran")
        return "v"

    @flow
    def f() -> None:
        no_args()
        no_args()  # INPUTS has no key (no arguments); RUN_ID alone keys the call

    f()
    assert calls == ["ran"]

    @task(cache_policy=INPUTS + FLOW_PARAMETERS)
    def nothing_to_key() -> str:
        calls.append("again")
        return "v"

    @flow
    def g() -> None:
        nothing_to_key()
        nothing_to_key()  # no part has a key: not cached

    g()
    assert calls == ["ran", "again", "again"]
    # Parts flatten, and several INPUTS merge into one with every exclusion.
    composed = (INPUTS - "a") + (TASK_SOURCE + (INPUTS - "b"))
    assert repr(composed) == "TASK_SOURCE + INPUTS - 'a' - 'b'"
    assert repr(DEFAULT - "a") == "TASK_SOURCE + RUN_ID + INPUTS - 'a'"


def test_from_cache_key_fn(default_store: Store) -> None:
    calls: list[str] = []
    seen: list[str | None] = []

    def by_name(ctx: Any, inputs: dict[str, Any]) -> str:
        seen.append(ctx.task_name)
        return str(inputs["name"]).lower()

    @task(cache_policy=CachePolicy.from_cache_key_fn(by_name))
    def greet(name: str) -> str:
        calls.append(name)
        return f"hi {name}"

    @flow
    def f(name: str) -> str:
        return greet(name)

    assert f("Ann") == "hi Ann"
    assert f("ANN") == "hi Ann"
    assert calls == ["Ann"] and seen == ["greet", "greet"]
    assert newest_task_runs(default_store)[0].cache_key == "ann"


def test_cache_policy_and_cache_key_fn_together_is_an_error() -> None:
    def key(ctx: Any, inputs: dict[str, Any]) -> str:
        return "k"

    with pytest.raises(ConfigurationError, match="both cache_policy and cache_key_fn"):
        task(cache_policy=INPUTS, cache_key_fn=key)(lambda: None)
    with pytest.raises(ConfigurationError, match="persist_result=False"):
        task(cache_policy=INPUTS, persist_result=False)(lambda: None)
    with pytest.raises(ConfigurationError, match="CachePolicy"):
        task(cache_policy="INPUTS")(lambda: None)
    # with_options: the newly given one replaces the other.
    keyed = task(cache_key_fn=key)(lambda: None)
    assert keyed.with_options(cache_policy=INPUTS).cache_policy == INPUTS
    assert keyed.with_options(cache_policy=INPUTS).cache_key_fn is None
    swapped = task(cache_policy=INPUTS)(lambda: None).with_options(cache_key_fn=key)
    assert swapped.cache_key_fn is key


def test_refresh_cache_recomputes_and_stores_the_new_result(default_store: Store) -> None:
    value = {"v": 1}

    @task(cache_policy=INPUTS)
    def read(x: int) -> int:
        return value["v"]

    def run(t: Any) -> int:
        @flow
        def f() -> int:
            return int(t(0))

        return f()

    assert run(read) == 1
    value["v"] = 2
    assert run(read) == 1  # cached
    refreshing = read.with_options(refresh_cache=True)
    assert refreshing.refresh_cache
    assert run(refreshing) == 2  # the lookup was skipped
    (tr,) = newest_task_runs(default_store)
    assert not tr.cached and tr.cache_key is not None
    value["v"] = 3
    assert run(read) == 2  # the refreshed result replaced the entry


def test_cache_expiration_with_a_policy(default_store: Store) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=0.3))
    def short_lived(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> int:
        return short_lived(1)

    f()
    (tr,) = newest_task_runs(default_store)
    expires_at = tr.cache_expires_at
    assert expires_at is not None
    if utcnow() < expires_at:  # (a very slow machine may already be past it)
        f()
        assert calls == [1]
    wait_until(lambda: utcnow() > expires_at, what="the cached result to expire")
    f()
    assert calls[-2:] == [1, 1]  # expired: ran again


def test_default_second_identical_call_in_the_same_run_is_a_hit(default_store: Store) -> None:
    calls: list[int] = []

    @task(persist_result=True)  # as in Prefect, this turns on the DEFAULT policy
    def add_one(x: int) -> int:
        calls.append(x)
        return x + 1

    @task(cache_policy=DEFAULT)
    def explicit(x: int) -> int:
        calls.append(-x)
        return x

    @task
    def plain(x: int) -> int:  # no policy: legato's default, never cached
        calls.append(100 + x)
        return x

    @flow
    def f() -> list[int]:
        return [add_one(1), add_one(1), add_one(2), explicit(1), explicit(1), plain(1), plain(1)]

    assert add_one.cache_policy == DEFAULT and plain.cache_policy is None
    assert f() == [2, 2, 3, 1, 1, 1, 1]
    assert calls == [1, 2, -1, 101, 101]
    cached = [t.cached for t in newest_task_runs(default_store)]
    assert cached == [False, True, False, False, True, False, False]
    f()  # another run: RUN_ID is part of DEFAULT, so nothing is reused
    assert calls[5:] == [1, 2, -1, 101, 101]


def test_an_input_that_cannot_be_hashed_fails_with_its_name() -> None:
    @task(cache_policy=INPUTS)
    def uses(lock: Any, x: int) -> int:
        return x

    @flow
    def f() -> int:
        return uses(threading.Lock(), 1)

    with pytest.raises(TaskCallError, match="input 'lock'"):
        f()

    @task(cache_policy=INPUTS - "lock")
    def excluded(lock: Any, x: int) -> int:
        return x

    @flow
    def g() -> int:
        return excluded(threading.Lock(), 1)

    assert g() == 1


def test_keys_are_stable_across_processes() -> None:
    value = {"tags": {"b", "a", "c"}, "n": (1, 2.5), "when": timedelta(seconds=3)}
    script = (
        "from datetime import timedelta\n"
        "from legato.cache_policies import stable_hash\n"
        "print(stable_hash({'tags': {'b', 'a', 'c'}, 'n': (1, 2.5), "
        "'when': timedelta(seconds=3)}))\n"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert keys == {stable_hash(value)}
