"""`DaskTaskRunner`: task bodies on a Dask cluster (extra ``legato[dask]``).

The arguments are those of Prefect's ``prefect_dask.DaskTaskRunner``. Only the
body moves (`legato.task_runners.remote`): submitted calls go to the cluster
many per ``client.map(run_body, payloads)`` and come back many per
``client.gather`` (`_take_batch`), each Dask future bridged to a
`concurrent.futures.Future`; the flow's process records everything.
"""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any

from legato.errors import ConfigurationError, MissingExtraError, TaskCallError
from legato.task_runners.remote import RemoteTaskRunner

if TYPE_CHECKING:
    from legato.tasks import Task

# A call waiting to be sent: (Dask key, payload, resources, bridge future).
_Outgoing = tuple[str, bytes, tuple[tuple[str, float], ...], "Future[bytes]"]

__all__ = ["DaskTaskRunner", "get_dask_client"]

# How long calls (or answers) are held back to batch them while the cluster is busy.
_LINGER_SECONDS = 0.2


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("dask", "distributed", "DaskTaskRunner") from None
    return distributed


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(
            f"DaskTaskRunner({name}={value!r}): expected a dict of keyword arguments "
            f"(str keys) or None"
        )
    return dict(value)


class DaskTaskRunner(RemoteTaskRunner):
    """Runs the function bodies of submitted task calls on a Dask cluster.

    ``address`` connects to a running scheduler (never closed by legato);
    without it a temporary cluster is made from ``cluster_class`` (a class or a
    dotted import string; default ``distributed.LocalCluster``) with
    ``cluster_kwargs``, started on the first submit and closed when the flow run
    ends. ``adapt_kwargs`` make that cluster adaptive (``cluster.adapt(**)``),
    ``client_kwargs`` go to ``distributed.Client``. A task's ``resources`` become
    Dask worker resources. ``in_flight`` bounds the bodies out at once.
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_class: str | Callable[..., Any] | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        adapt_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        *,
        in_flight: int = 256,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address):
            raise ConfigurationError(
                f"DaskTaskRunner(address={address!r}): give a scheduler address such as "
                f"'tcp://127.0.0.1:8786', or None for a temporary local cluster"
            )
        if address is not None and (cluster_class is not None or cluster_kwargs or adapt_kwargs):
            raise ConfigurationError(
                "DaskTaskRunner: address connects to a running cluster, so cluster_class, "
                "cluster_kwargs and adapt_kwargs cannot be given with it; drop one or the other"
            )
        if cluster_class is not None and not (
            isinstance(cluster_class, str) or callable(cluster_class)
        ):
            raise ConfigurationError(
                f"DaskTaskRunner(cluster_class={cluster_class!r}): give a cluster class or "
                f"its dotted import path (e.g. 'distributed.LocalCluster')"
            )
        if not isinstance(in_flight, int) or in_flight < 1:
            raise ConfigurationError(
                f"DaskTaskRunner(in_flight={in_flight!r}) needs a positive integer"
            )
        super().__init__(max_workers=in_flight, in_flight=in_flight)
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = _mapping("cluster_kwargs", cluster_kwargs)
        self.adapt_kwargs = _mapping("adapt_kwargs", adapt_kwargs)
        self.client_kwargs = _mapping("client_kwargs", client_kwargs)
        self.in_flight = in_flight
        self._client: Any = None
        self._cluster: Any = None
        self._start_lock = threading.Lock()
        self._dask_futures: dict[Future[bytes], Any] = {}  # bridge -> Dask future
        self._bridges: dict[str, Future[bytes]] = {}  # Dask key -> bridge
        self._outbox: SimpleQueue[_Outgoing | None] = SimpleQueue()
        self._inbox: SimpleQueue[Any] = SimpleQueue()
        self._loops: list[threading.Thread] = []

    def duplicate(self) -> DaskTaskRunner:
        return type(self)(
            address=self.address,
            cluster_class=self.cluster_class,
            cluster_kwargs=dict(self.cluster_kwargs),
            adapt_kwargs=dict(self.adapt_kwargs),
            client_kwargs=dict(self.client_kwargs),
            in_flight=self.in_flight,
        )

    # --- the backend ---------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of this runner (started on first use)."""
        client = self._client
        if client is None:
            with self._start_lock:
                if self._client is None:
                    self._start()
                    for loop in (self._send_loop, self._answer_loop):
                        thread = threading.Thread(
                            target=loop, args=(self._client,), name="legato-dask", daemon=True
                        )
                        thread.start()
                        self._loops.append(thread)
                client = self._client
        return client

    def _start(self) -> None:
        distributed = _distributed()
        client_kwargs = {"set_as_default": False, **self.client_kwargs}
        if self.address is not None:
            self._client = distributed.Client(self.address, **client_kwargs)
            return
        cluster_class = self._cluster_class(distributed)
        cluster = cluster_class(**self.cluster_kwargs)
        try:
            if self.adapt_kwargs:
                cluster.adapt(**self.adapt_kwargs)
            self._client = distributed.Client(cluster, **client_kwargs)
        except BaseException:
            cluster.close()
            raise
        self._cluster = cluster

    def _cluster_class(self, distributed: Any) -> Callable[..., Any]:
        given = self.cluster_class
        if given is None:
            return distributed.LocalCluster
        if callable(given):
            return given
        module_name, _, attr = given.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attr) if module_name else None
        except (ImportError, AttributeError):
            found = None
        if found is None or not callable(found):
            raise ConfigurationError(
                f"DaskTaskRunner(cluster_class={given!r}): no such class could be imported; "
                f"give a dotted path such as 'distributed.LocalCluster' or the class itself"
            )
        return found

    def _send_payload(self, payload: bytes, task: Task[Any, Any]) -> Future[bytes]:
        self.client  # noqa: B018  (started on the first send)
        bridge: Future[bytes] = Future()
        resources = tuple(sorted(task.resources.items())) if task.resources else ()
        self._outbox.put((f"{task.name}-{uuid.uuid4().hex}", payload, resources, bridge))
        return bridge

    def _send_loop(self, client: Any) -> None:
        """Sends what the driver threads queued, many calls per ``client.map`` (one
        scheduler message each, not one per call)."""
        from legato.engine.remote import run_body

        outbox = self._outbox
        busy = max(1, self.in_flight // 2)  # bodies out that keep the cluster busy
        enough = max(1, self.in_flight // 4)  # calls worth one client.map when busy
        while True:
            first = outbox.get()
            if first is None:
                return
            batch = _take_batch(
                outbox, first, 1000, enough, lambda taken: len(self._bridges) >= busy
            )
            groups: dict[tuple[tuple[str, float], ...], list[_Outgoing]] = {}
            for item in batch:
                if not item[3].cancelled():
                    groups.setdefault(item[2], []).append(item)
            for resources, items in groups.items():
                try:
                    futures = client.map(
                        run_body,
                        [item[1] for item in items],
                        key=[item[0] for item in items],
                        resources=dict(resources) or None,
                    )
                except Exception as exc:  # the client is closed or the cluster gone
                    for item in items:
                        _settle(item[3], None, exc)
                    continue
                for item, dask_future in zip(items, futures, strict=True):
                    self._track(item[3], dask_future)

    def _track(self, bridge: Future[bytes], dask_future: Any) -> None:
        with self._send_lock:
            self._dask_futures[bridge] = dask_future
            self._bridges[dask_future.key] = bridge

        def cancelled(done: Future[bytes]) -> None:
            if done.cancelled():
                dask_future.cancel()

        bridge.add_done_callback(cancelled)
        dask_future.add_done_callback(self._inbox.put)

    def _answer_loop(self, client: Any) -> None:
        """Fetches finished bodies' outcomes, many per ``client.gather``."""
        inbox = self._inbox
        busy = max(1, self.in_flight // 2)
        enough = max(1, self.in_flight // 4)
        while True:
            first = inbox.get()
            if first is None:
                return
            batch = _take_batch(
                inbox, first, 10_000, enough, lambda taken: len(self._bridges) - taken >= busy
            )
            finished = [f for f in batch if f.status == "finished"]
            values: dict[str, Any] = {}
            if finished:
                try:
                    gathered = client.gather(finished, errors="raise")
                    values = {f.key: v for f, v in zip(finished, gathered, strict=True)}
                except Exception:  # one was lost meanwhile: fetch them one by one
                    values = {}
            for dask_future in batch:
                if dask_future.key in values:
                    packed, error = values[dask_future.key], None
                else:
                    try:
                        packed, error = dask_future.result(), None
                    except BaseException as exc:  # CancelledError, KilledWorker, ...
                        packed, error = None, exc
                # Let the cluster forget the result before the driver records it: a
                # worker lost afterwards does not make Dask run the body again.
                dask_future.release()
                with self._send_lock:
                    bridge = self._bridges.pop(dask_future.key, None)
                    if bridge is not None:
                        self._dask_futures.pop(bridge, None)
                if bridge is not None:
                    _settle(bridge, packed, error)

    def _stop(self, unfinished: list[Future[bytes]], wait: bool) -> None:
        for future in unfinished:
            future.cancel()  # not yet sent: never sent; sent: its Dask future is cancelled
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        loops, self._loops = self._loops, []
        if loops:
            self._outbox.put(None)
            loops[0].join()
        with self._send_lock:
            left = list(self._dask_futures.values())
        if client is not None and left:
            client.cancel(left)
        if loops:
            self._inbox.put(None)
            loops[1].join()
        with self._send_lock:
            self._bridges.clear()
            self._dask_futures.clear()
        self._outbox, self._inbox = SimpleQueue(), SimpleQueue()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def __repr__(self) -> str:
        where = f"address={self.address!r}" if self.address else "temporary cluster"
        return f"DaskTaskRunner({where})"


def _take_batch(
    queue: SimpleQueue[Any], first: Any, limit: int, enough: int, busy: Callable[[int], bool]
) -> list[Any]:
    """``first`` and what else is queued, up to ``limit`` items (a None, the stop
    sign, is put back for the next round). Each ``client.map`` or ``client.gather``
    is a scheduler round trip with a fixed cost (paid in this process's GIL with a
    `LocalCluster`): while ``busy(len(batch))`` says many bodies are still out, the
    cluster has work queued, so wait up to `_LINGER_SECONDS` (real time: a poll, not
    a delay) for ``enough`` items instead of sending them one or two at a time.
    Measured on a 10,000-item map: 1.7 calls per ``client.map`` and 5 per
    ``client.gather`` without the wait (1.18-1.69x raw Dask's time), 35-45 with it
    (1.05-1.33x)."""
    batch = [first]
    deadline = 0.0
    while len(batch) < limit:
        try:
            item = queue.get_nowait()
        except Empty:
            if len(batch) >= enough or not busy(len(batch)):
                break
            now = time.monotonic()
            deadline = deadline or now + _LINGER_SECONDS
            if now >= deadline:
                break
            try:  # short slices: stop waiting as soon as the cluster runs low
                item = queue.get(timeout=min(deadline - now, 0.005))
            except Empty:
                continue
        if item is None:
            queue.put(None)  # stop after this batch
            break
        batch.append(item)
    return batch


def _settle(bridge: Future[bytes], packed: Any, error: BaseException | None) -> None:
    """Answer ``bridge`` unless it was cancelled (a timeout, a cancelled run)."""
    if not bridge.set_running_or_notify_cancel():
        return
    if error is None:
        bridge.set_result(packed)
    else:
        bridge.set_exception(error)


@contextmanager
def get_dask_client(**client_kwargs: Any) -> Iterator[Any]:
    """Inside a task body running on a Dask worker: a client for Dask collections
    (``distributed.worker_client``), e.g. ``with get_dask_client() as client:
    client.compute(array.sum()).result()``."""
    distributed = _distributed()
    try:
        distributed.get_worker()
    except ValueError:
        raise TaskCallError(
            "get_dask_client() works inside a task body running on a Dask worker; run the "
            "task with DaskTaskRunner (or call distributed.Client yourself elsewhere)"
        ) from None
    with distributed.worker_client(**client_kwargs) as client:
        yield client
