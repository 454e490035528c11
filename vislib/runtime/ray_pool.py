"""Past one machine: a collection's pass in chunks on a Ray actor pool, results back in order; and
independent jobs on the network (feature visualisations) as Ray tasks spread over the GPUs.

Ray is an optional extra (`pip install vislib[distributed]`) and is imported only here, only when a
caller asks for `engine="ray"`. With RAY_ADDRESS set, the existing cluster is joined; otherwise a
local Ray starts on this machine's loopback address (ray.init(address="local")), which is what a
laptop needs and what the tests use.

Shape (Ray Data batch inference): each row of the dataset is one chunk of the collection (its
picture indices); an actor pool holds the network and the collection once per actor (one per GPU,
or a share of the CPUs) and runs `work(model, collection, start, stop)` on its rows with vislib's
own decoding; the caller folds the results in chunk order with its exact merge. The chunks hold
whole batches counted from 0 (`vislib.data.batches.chunks`) and every actor computes with the driver's thread count, so the
results equal the local engine's bit for bit.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import pickle
from collections.abc import Callable, Iterator, Sequence

import torch


def start():
    """Join RAY_ADDRESS's cluster, or start a local Ray on loopback; returns the ray module."""
    if not os.environ.get("RAY_ADDRESS"):
        # Ray binds a local instance to the machine's outward address unless told it is a single
        # machine; loopback keeps a laptop's Ray off the network. Read when Ray is first imported,
        # so this must come before anything imports it.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as err:
        raise RuntimeError("The Ray engine needs Ray: pip install 'vislib[distributed]'.") from err
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(address="local", num_cpus=os.cpu_count(), **options)
    return ray


class _ChunkActor:
    """Holds the network and the collection once; each call runs `work` on its chunks."""

    def __init__(self, work: Callable, model, collection, threads: int):
        self.model = _placed(model, threads)
        self.work, self.collection = work, collection

    def __call__(self, rows: dict) -> dict:
        results = [self.work(self.model, self.collection, int(a), int(b)) for a, b in zip(rows["start"], rows["stop"])]
        return {"start": rows["start"], "result": [pickle.dumps(r) for r in results]}


def _placed(model, threads: int):
    """The shipped (CPU) model on this worker's device, computing with the driver's thread count."""
    torch.set_num_threads(threads)  # this worker process's own setting, not the driver's
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return dataclasses.replace(model, net=model.net.to(device), device=device, _layers=None)


def _shipped(model):
    with model.running() as net:  # inside, no other job's hooks are on the network to be copied
        return dataclasses.replace(model, net=copy.deepcopy(net).cpu(), device=torch.device("cpu"), _layers=None)


def _resources(ray, workers: int | None) -> tuple[int, dict]:
    """How many run at once (one per GPU, else VISLIB_RAY_WORKERS or 1) and what each asks for."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1.0, float(resources.get("CPU", 1)))
    workers = workers or int(os.environ.get("VISLIB_RAY_WORKERS", 0)) or gpus or 1
    # An actor pool that takes every CPU leaves none for Ray's own read tasks and deadlocks: the
    # workers share all CPUs but one (fractionally on a small machine).
    return workers, ({"num_gpus": 1} if gpus else {"num_cpus": max(0.25, (cpus - 1) / workers)})


def _task(fn: Callable, model, threads: int, args: tuple, kwargs: dict) -> bytes:
    return pickle.dumps(fn(_placed(model, threads), *args, **kwargs))


def map_tasks(fn: Callable, model, calls: Sequence[tuple[tuple, dict]], workers: int | None = None) -> Iterator:
    """fn(model, *args, **kwargs) for each (args, kwargs) of `calls` as Ray tasks, at most `workers`
    at once (one per GPU); yields (index in calls, result) as each finishes. Closing the iterator
    (a stop) cancels the tasks still running. `fn` must be importable (a module-level function).

    Tasks, not an actor pool: each call is long (minutes of optimisation) and independent, so
    whichever GPU is free takes the next; the network is put in Ray's object store once."""
    if not calls:
        return
    ray = start()
    workers, per_task = _resources(ray, workers)
    remote = ray.remote(**per_task)(_task)
    shipped = ray.put(_shipped(model))
    threads = torch.get_num_threads()
    waiting = list(enumerate(calls))
    running: dict = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index, (args, kwargs) = waiting.pop(0)
                running[remote.remote(fn, shipped, threads, args, kwargs)] = index
            (ready,), _ = ray.wait(list(running), num_returns=1)
            yield running.pop(ready), pickle.loads(ray.get(ready))
    finally:
        for ref in running:
            ray.cancel(ref, force=True)


def map_chunks(work: Callable, model, collection, bounds: Sequence[tuple[int, int]],
               workers: int | None = None) -> Iterator:
    """work(model, collection, start, stop) for each chunk of `bounds` on a Ray actor pool, in order.

    `work` must be importable (a module-level function, or a functools.partial of one)."""
    if not bounds:
        return iter(())
    start()
    import ray.data  # binds `ray` too

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the caller folds the chunks in order
    context.enable_progress_bars = False
    workers, per_actor = _resources(ray, workers)
    # The driver's thread count in every actor: a CPU convolution's float sums depend on how it is
    # split over threads (2 actors with 1 thread each differed in the last bits on 2 cores).
    threads = torch.get_num_threads()
    shipped = _shipped(model)
    rows = ray.data.from_items([{"start": a, "stop": b} for a, b in bounds], override_num_blocks=len(bounds))
    done = rows.map_batches(_ChunkActor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
                            fn_constructor_args=(work, shipped, collection, threads), **per_actor)
    return (pickle.loads(row["result"]) for row in done.iter_rows())
