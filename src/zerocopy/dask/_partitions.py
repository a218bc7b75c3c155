"""Partitions to tensors where they live, and per-partition stages on the workers.

- ``to(collection, target)``: one task per partition, run by the scheduler where the
  partition is (data locality), ``zerocopy.to(partition, target, **options)``: zero-copy
  per partition where ``zerocopy.to`` shares. Returns futures in partition order.
- ``by_worker`` / ``train_on_workers`` / ``local``: the pattern XGBoost's Dask integration
  uses: persist, ask the scheduler who holds each partition, then run one function per
  worker over the partitions it holds (no partition moves; each becomes a tensor there).
- ``map_partitions_stage``: a stage function per partition on the workers, results with
  each partition's ledger, worker, time and memory (what the demo's cluster mode needs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from distributed import Future, futures_of, get_client, get_worker, wait  # noqa: TID253 (zerocopy.dask runs on distributed)

import zerocopy
from zerocopy.errors import InvalidArgumentError, UnsupportedObjectError, message
from zerocopy.memory.report import report

__all__ = ["PartitionOutput", "by_worker", "local", "map_partitions_stage", "partitions", "to",
           "train_on_workers"]


def client_of(client: Any) -> Any:
    """``client``, or the current one when None; a typed error where there is none (Dask's
    own is a bare ValueError) or where ``client`` is not one."""
    if client is None:
        try:
            return get_client()
        except ValueError as exc:
            raise InvalidArgumentError(message(
                "zerocopy.dask needs a Dask client", got="none given and none running",
                hint="create one first: client = distributed.Client() (a LocalCluster here), "
                     "or pass client=")) from exc
    if not hasattr(client, "scheduler_info"):
        raise InvalidArgumentError(message(
            "zerocopy.dask needs a Dask client", expected="a distributed.Client",
            got=f"{type(client).__module__}.{type(client).__qualname__}",
            hint="pass the Client your cluster gave you"))
    return client


def _partition_futures(collection: Any, client: Any) -> list[Future]:
    """Futures of ``collection``'s partitions in order, persisting it (the partitions stay
    where the scheduler put them), or the futures/objects of a list (objects scattered)."""
    if isinstance(collection, list | tuple):
        items = list(collection)
        loose = [i for i, item in enumerate(items) if not isinstance(item, Future)]
        if loose:
            for i, future in zip(loose, client.scatter([items[i] for i in loose], hash=False),
                                 strict=True):
                items[i] = future
        return items
    if not hasattr(collection, "__dask_keys__"):
        raise UnsupportedObjectError(message(
            "not a dask collection nor a list of partitions", got=type(collection).__name__,
            hint="pass a dask.array, a dask.dataframe, or a list of futures"))
    futures = futures_of(client.persist(collection))
    # a persisted collection's futures are its partitions' keys: (name, i[, j...]); the
    # graph may alias them under another name, so order by the block index
    return sorted(futures, key=lambda f: f.key[1:] if isinstance(f.key, tuple) else (f.key,))


def partitions(collection: Any, *, client: Any = None) -> list[Future]:
    """``collection`` persisted: the futures of its partitions, in partition order."""
    return _partition_futures(collection, client_of(client))


def _convert(part: Any, target: str, options: dict[str, Any]) -> Any:
    return zerocopy.to(part, target, **options)


def to(collection: Any, target: str, *, client: Any = None, **options: Any) -> list[Future]:
    """Each partition of ``collection`` (a dask.array, a dask.dataframe, or a list of
    futures) as a ``target`` object, converted by the worker that holds the partition;
    ``options`` go to ``zerocopy.to`` (``copy=False`` fails a partition that cannot be
    shared). Futures in partition order; persist the collection first so its partitions
    stay where they are."""
    client = client_of(client)
    return [client.submit(_convert, part, target, options, pure=False)
            for part in _partition_futures(collection, client)]


def by_worker(collection: Any, *, client: Any = None) -> dict[str, list[Future]]:
    """Persist ``collection`` and map each worker to the futures of the partitions it holds
    (in partition order)."""
    client = client_of(client)
    parts = _partition_futures(collection, client)
    wait(parts)
    who = client.who_has(parts)
    out: dict[str, list[Future]] = {}
    for part in parts:
        holders = sorted(who.get(part.key, ()))
        out.setdefault(holders[0] if holders else "", []).append(part)
    return out


def local(parts: Iterable[Any], target: str, **options: Any) -> Iterator[Any]:
    """Inside a task on a worker: each of ``parts`` (local partitions) as a ``target``
    tensor, one at a time (zero-copy where ``zerocopy.to`` shares)."""
    for part in parts:
        yield zerocopy.to(part, target, **options)


def _train(fn: Callable[..., Any], parts: list[Any], target: str, options: dict[str, Any],
           kwargs: dict[str, Any]) -> Any:
    return fn(local(parts, target, **options), **kwargs)


def train_on_workers(fn: Callable[..., Any], collection: Any, target: str, *, client: Any = None,
                     options: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(tensors, **kwargs)`` once per worker, where ``tensors`` iterates over the
    partitions that worker holds as ``target`` tensors; returns worker -> ``fn``'s result.
    No partition moves between workers."""
    client = client_of(client)
    futures = {worker: client.submit(_train, fn, parts, target, dict(options or {}), kwargs,
                                     workers=[worker], allow_other_workers=False, pure=False)
               for worker, parts in by_worker(collection, client=client).items()}
    return dict(zip(futures, client.gather(list(futures.values())), strict=True))


@dataclass
class PartitionOutput:
    """One partition's stage result, gathered."""

    index: int
    worker: str
    pid: int
    result: Any
    ledger: Any
    seconds: float
    memory: dict[str, Any] = field(default_factory=dict)


def _stage(fn: Callable[..., Any], part: Any, index: int, kwargs: dict[str, Any]) -> PartitionOutput:
    start = time.perf_counter()
    out = fn(part, **kwargs)
    seconds = time.perf_counter() - start
    result, ledger = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
    return PartitionOutput(index, get_worker().address, os.getpid(), result, ledger, seconds,
                           report().to_dict())


def map_partitions_stage(client: Any, fn: Callable[..., Any], parts: Any, *,
                         gather: bool = True, **kwargs: Any) -> list[PartitionOutput] | list[Future]:
    """Run ``fn(part, **kwargs)`` on the workers, one task per partition, where the
    partition is. ``parts``: a list of futures or local objects (scattered first, spread
    over the workers), or a dask collection. ``fn`` returns ``result`` or ``(result,
    ledger)``; each output also says which worker ran it, its pid, the time and that
    worker's ``zerocopy.memory.report()`` after the stage. Gathered in partition order
    (``gather=False``: the futures)."""
    items = _partition_futures(parts, client)
    futures = [client.submit(_stage, fn, part, index, kwargs, pure=False)
               for index, part in enumerate(items)]
    return client.gather(futures) if gather else futures
