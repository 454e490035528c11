"""Which device the engine runs on, one fair queue per device, and the out-of-memory fallback.

Streamlit serves every browser session from threads of one process and the networks are shared
between them, so work that hooks a network or changes ``requires_grad`` holds its device's
queue. The queue is first come, first served and long jobs take it once per step or batch, so
a short job waits for at most one step of a long one, and a waiting session can be told how
many are ahead of it (``listening(on_wait=...)``).
"""
from __future__ import annotations

import contextlib
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
from collections import deque
from typing import Callable

import torch

# How often a waiting thread wakes to report its place (and to notice a stop request).
WAIT_REPORT_SECONDS = 0.25


class DeviceQueue:
    """A re-entrant lock that hands the device over in arrival order.

    Hand-written because threading.RLock wakes waiters in no particular order (a session could
    starve behind a stream of steps of another's long job) and cannot say how many wait.
    """

    def __init__(self, name: str):
        self.name = name
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[int] = deque()  # thread ids, in arrival order

    def ahead(self, ident: int | None = None) -> int:
        """How many hold or wait for the device before the thread `ident` (default: everyone)."""
        with self._cond:
            holders = 0 if self._owner is None else 1
            if ident is None or ident not in self._waiting:
                return holders + len(self._waiting)
            return holders + self._waiting.index(ident)

    def acquire(self) -> None:
        me = threading.get_ident()
        if self._owner != me:
            checkpoint()  # every step or batch of a long job passes here: a stop takes effect now
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None and not self._waiting:
                self._owner, self._depth = me, 1
                return
            self._waiting.append(me)
        told = False
        try:
            while True:
                with self._cond:
                    if self._owner is None and self._waiting[0] == me:
                        self._waiting.popleft()
                        self._owner, self._depth = me, 1
                        break
                    place = (self._owner is not None) + self._waiting.index(me)
                    self._cond.wait(WAIT_REPORT_SECONDS)
                # Outside the queue's own lock: the listener may raise (Streamlit stopping the
                # script), and must not hold up the others while it draws.
                if _listener().on_wait is not None:
                    _listener().on_wait(self.name, place)
                    told = True
        except BaseException:
            with self._cond:
                if me in self._waiting:
                    self._waiting.remove(me)
                self._cond.notify_all()
            raise
        if told:
            try:
                _listener().on_wait(self.name, 0)
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("This thread does not hold the device.")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()
                if not self._waiting:
                    _trimmer.soon()

    def __enter__(self) -> "DeviceQueue":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------- memory back to the system

def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


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
        if any(q.ahead() for q in list(_queues.values())):
            return  # busy again; the next idle moment trims
        _malloc_trim()


_trimmer = _Trimmer()


def release_memory() -> None:
    """Collect garbage and hand freed memory back to the system now: for when something other
    than a device job let go of memory (closed sessions' pictures and state)."""
    gc.collect()
    _malloc_trim()


_queues: dict[str, DeviceQueue] = {}
_queues_guard = threading.Lock()


def device_lock(device: str | torch.device) -> DeviceQueue:
    """The one queue for ``device`` (re-entrant, so a locked helper may call another)."""
    key = str(_indexed(torch.device(device)))
    with _queues_guard:
        if key not in _queues:
            _queues[key] = DeviceQueue(key)
        return _queues[key]


# ---------------------------------------------------------------- who is listening

@dataclasses.dataclass
class _Listener:
    on_wait: Callable[[str, int], object] | None = None  # (device, n ahead; 0 when its turn came)
    on_notice: Callable[[str], object] | None = None      # one sentence, e.g. a CPU fallback
    on_check: Callable[[], object] | None = None          # raises when the work should stop


_local = threading.local()


def _listener() -> _Listener:
    if not hasattr(_local, "listener"):
        _local.listener = _Listener()
    return _local.listener


@contextlib.contextmanager
def listening(on_wait: Callable[[str, int], object] | None = None, on_notice: Callable[[str], object] | None = None,
              on_check: Callable[[], object] | None = None):
    """For this thread's work: call on_wait(device, n_ahead) while it waits for a device,
    on_notice(sentence) when work had to change (smaller batches, the CPU), and on_check() at
    every step or batch, which raises to stop the work (a Stop button, a closed browser tab)."""
    old = _listener()
    _local.listener = _Listener(on_wait, on_notice, on_check)
    try:
        yield
    finally:
        _local.listener = old


def checkpoint() -> None:
    """A point where work may be stopped: the listener's on_check raises if it should."""
    if _listener().on_check is not None:
        _listener().on_check()


def notify(sentence: str) -> None:
    """Tell whoever listens on this thread (the page, the CLI); silent when nobody does."""
    if _listener().on_notice is not None:
        _listener().on_notice(sentence)


# ---------------------------------------------------------------- out of memory

_cpu_twins: "weakref.WeakKeyDictionary[torch.nn.Module, object]" = weakref.WeakKeyDictionary()


def cpu_twin(model):
    """A CPU copy of `model` (kept while the model lives); the shared model is never moved."""
    if model.device.type == "cpu":
        return model
    with device_lock(model.device):
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
                    notify(f"The {model.device.type.upper()} ran out of memory; trying again with batches of {batch}.")
                    continue
                notify(f"The {model.device.type.upper()} ran out of memory; this ran on the CPU instead (slower).")
                kwargs.pop("batch_size", None)  # the job's own CPU default
                return job(cpu_twin(model), *args, **kwargs)
    return run


# ---------------------------------------------------------------- choosing

def default_device() -> torch.device:
    """CUDA when present, else Apple MPS, else CPU; ``VISLIB_DEVICE`` overrides."""
    wanted = os.environ.get("VISLIB_DEVICE", "").strip()
    if wanted:
        try:
            return _indexed(torch.device(wanted))
        except RuntimeError as err:
            raise ValueError(f"VISLIB_DEVICE={wanted!r} is not a device name PyTorch knows (try cpu or cuda).") from err
    if torch.cuda.is_available():
        return _indexed(torch.device("cuda"))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve(device: str | torch.device | None) -> torch.device:
    return default_device() if device is None else _indexed(torch.device(device))


def _indexed(device: torch.device) -> torch.device:
    """'cuda' as 'cuda:0' (the current GPU): tensors always name their GPU, so a model's device
    compares equal to its tensors', and one GPU has one queue whichever way it was named."""
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def describe(device: str | torch.device) -> str:
    """A short line for the sidebar, e.g. 'GPU: NVIDIA H100 (80 GB)' or 'CPU (2 threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GB)"
    if device.type == "mps":
        return "GPU: Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"
