"""Memory: keeping freed memory for the next pass and handing it back to the system when idle, and
running on when a device runs out of it."""
from __future__ import annotations

import copy
import ctypes
import dataclasses
import functools
import gc
import inspect
import os
import sys
import threading
import weakref
from typing import Callable

import torch

from vislib.runtime import progress, queue


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def reuse_freed_memory() -> bool:
    """Let glibc keep the memory a pass frees for the next pass: one pool (arena) for every thread,
    no block mapped from the system on its own, no trimming when a block is freed. The idle
    trimmer below hands the free pages back once the devices rest. Done once, when vislib is
    imported (before other threads have pools of their own); VISLIB_MALLOC=system leaves glibc's
    defaults. Returns whether it took effect (glibc on Linux).

    Why: by default glibc maps every block over 32 MB (a batch's activations: lite0's first layer
    at batch 16 is 26 MB, VGG's 200 MB) fresh from the system and unmaps it when freed, and pools
    of other threads give back their tops; so each pass of a batched job (RISE, Score-CAM,
    occlusion, the leaderboard) had the kernel zero its activations again page by page: 15 passes
    of lite0 at batch 16 took 1.5 million page faults and half their time (3.5 s; 1.7 s without,
    bench/malloc.py)."""
    if os.environ.get("VISLIB_MALLOC", "").strip().lower() == "system":
        return False
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
    return all([libc.mallopt(parameter, value) == 1 for parameter, value in settings])


def _malloc_trim() -> None:
    """glibc's malloc_trim(0): hand the free pages of every memory pool back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class _Trimmer:
    """After the devices have been idle a moment, hand freed memory back to the system.

    glibc keeps what a job freed for reuse: after a class has gone home a server measured
    +30-60% over its starting memory that no object used, and malloc_trim brought it back."""

    def __init__(self, delay: float = 2.0):
        self.delay, self._timer, self._guard = delay, None, threading.Lock()

    def soon(self) -> None:
        with self._guard:
            if self._timer is None:
                self._timer = threading.Timer(self.delay, self._trim)
                self._timer.daemon = True
                self._timer.start()

    def _trim(self) -> None:
        with self._guard:
            self._timer = None
        if queue.busy():
            return  # busy again; the next idle moment trims
        _malloc_trim()


_trimmer = _Trimmer()


def release_memory() -> None:
    """Collect garbage and hand freed memory back to the system now: for when something other
    than a device job let go of memory (closed sessions' pictures and state)."""
    gc.collect()
    _malloc_trim()


queue._on_idle.append(_trimmer.soon)
reuse_freed_memory()


def freeze_long_lived() -> int:
    """Hide every object alive now from the cycle collector (after one last collection); returns
    how many. For a server, once its libraries are imported: Streamlit runs `gc.collect(2)` after
    every script run, and with torch, pandas and plotly loaded that walks some 600,000 objects for
    0.3 s holding the GIL - twice a second on the live page, whose fragment reruns that often.
    Frozen, a collection walks only what sessions made since. Reference counting still frees
    frozen objects; only cycles among them are never collected, and imported modules live for
    the process anyway."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


# ---------------------------------------------------------------- out of memory

_cpu_twins: "weakref.WeakKeyDictionary[torch.nn.Module, object]" = weakref.WeakKeyDictionary()


def cpu_twin(model):
    """A CPU copy of `model` (kept while the model lives); the shared model is never moved."""
    if model.device.type == "cpu":
        return model
    with queue.device_lock(model.device):
        if model.net not in _cpu_twins:
            _cpu_twins[model.net] = dataclasses.replace(
                model, net=copy.deepcopy(model.net).cpu(), device=torch.device("cpu"), _layers=None)
        return _cpu_twins[model.net]


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def falls_back(job: Callable) -> Callable:
    """On out-of-memory, run `job(model, ...)` again with half the batch (when it takes
    `batch_size`), down to 1, then on a CPU copy of the model, telling the listener each time."""
    takes_batch = "batch_size" in inspect.signature(job).parameters

    @functools.wraps(job)
    def run(model, *args, **kwargs):
        batch = kwargs.get("batch_size")
        while True:
            try:
                return job(model, *args, **kwargs)
            except torch.OutOfMemoryError:
                _free(model.device)
                if model.device.type == "cpu":
                    raise
                if takes_batch and batch and batch > 1:
                    batch = kwargs["batch_size"] = batch // 2
                    progress.notify(f"The {model.device.type.upper()} ran out of memory; trying again with batches of {batch}.")
                    continue
                progress.notify(f"The {model.device.type.upper()} ran out of memory; this ran on the CPU instead (slower).")
                kwargs.pop("batch_size", None)  # the job's own CPU default
                return job(cpu_twin(model), *args, **kwargs)
    return run


