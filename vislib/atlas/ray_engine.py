"""The atlas's pass on Ray Data, for a collection larger than one machine should read alone.

Ray is an optional extra (`pip install vislib[distributed]`) and is imported only here, only when
`engine="ray"` is asked for. With RAY_ADDRESS set, the existing cluster is joined; otherwise a
local Ray starts on this machine's loopback address (ray.init(address="local")), which is what a
laptop needs and what the tests use.

Shape (Ray Data batch inference): each row of the dataset is one chunk of the collection (its
picture indices); an actor pool holds the network once per actor (one per GPU, or a share of the
CPUs) and runs vislib's own decoding and `collect.run_chunk` on its rows; the driver folds the
chunk results in chunk order with the exact merge. The chunks are the local engine's chunks, with
the same batches inside, so the result equals the local engine's bit for bit.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import pickle
from collections.abc import Iterator

import torch

from vislib.atlas import collect
from vislib.data.collections import Collection
from vislib.models import Model


def start(workers: int | None = None):
    """Join RAY_ADDRESS's cluster, or start a local Ray on loopback; returns the ray module."""
    if "ray" not in globals():
        if not os.environ.get("RAY_ADDRESS"):
            # Ray binds a local instance to the machine's outward address unless told it is a
            # single machine; loopback keeps a laptop's Ray off the network. Read when Ray is first
            # imported, so this must come before anything imports it.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError as err:
            raise RuntimeError("The Ray engine needs Ray: pip install 'vislib[distributed]'.") from err
        globals()["ray"] = ray
    ray = globals()["ray"]
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(address="local", num_cpus=os.cpu_count(), **options)
    return ray


class _PassActor:
    """Holds the network and the collection once; each call runs the pass over its chunks."""

    def __init__(self, model: Model, collection: Collection, layers: list[str], k: int, batch_size: int,
                 threads: int):
        torch.set_num_threads(threads)  # this worker process's own setting, not the driver's
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = dataclasses.replace(model, net=model.net.to(device), device=torch.device(device), _layers=None)
        self.collection, self.layers, self.k, self.batch_size = collection, layers, k, batch_size

    def __call__(self, rows: dict) -> dict:
        results = [collect.run_chunk(self.model, self.layers, self.collection, self.k, int(a), int(b), self.batch_size)
                   for a, b in zip(rows["start"], rows["stop"])]
        return {"start": rows["start"], "result": [pickle.dumps(r) for r in results]}


def run_chunks(model: Model, layers: list[str], collection: Collection, k: int, bounds: list[tuple[int, int]],
               batch_size: int, workers: int | None = None) -> Iterator[collect.ChunkResult]:
    """The chunk results of `bounds`, in order, computed by a Ray actor pool."""
    if not bounds:
        return iter(())
    start()
    import ray.data  # binds `ray` too

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the driver folds the chunks in order
    context.enable_progress_bars = False
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1.0, float(resources.get("CPU", 1)))
    workers = workers or gpus or 1
    # An actor pool that takes every CPU leaves none for Ray's own read tasks and deadlocks: the
    # actors share all CPUs but one (fractionally on a small machine).
    per_actor = {"num_gpus": 1} if gpus else {"num_cpus": max(0.25, (cpus - 1) / workers)}
    # The driver's thread count in every actor: a CPU convolution's float sums depend on how it is
    # split over threads, and the atlas must equal the local engine's bit for bit (2 actors with 1
    # thread each differed in the last bits on this 2-core machine).
    threads = torch.get_num_threads()
    with model.running() as net:  # inside, no other job's hooks are on the network to be copied
        shipped = dataclasses.replace(model, net=copy.deepcopy(net).cpu(), device=_cpu(), _layers=None)
    rows = ray.data.from_items([{"start": a, "stop": b} for a, b in bounds], override_num_blocks=len(bounds))
    done = rows.map_batches(_PassActor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
                            fn_constructor_args=(shipped, collection, layers, k, batch_size, threads), **per_actor)
    return (pickle.loads(row["result"]) for row in done.iter_rows())


def _cpu():
    return torch.device("cpu")
