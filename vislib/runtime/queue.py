"""One fair queue per device: every pass on a shared network runs while holding it.

Streamlit serves every browser session from threads of one process and the networks are shared
between them. A hook registered by one job fires on EVERY forward pass of the network, whoever
runs it, so the rule is: every forward or backward pass on a shared network runs while its
thread holds the device's queue (`Model.running()`), and the network refuses a pass outside it
(`guard`, installed on every Model's network). The queue is first come, first served and long
jobs take it once per step or batch, so a short job waits for at most one step of a long one,
and a waiting session can be told how many are ahead of it (`progress.listening(on_wait=...)`).
"""
from __future__ import annotations

import contextlib
import threading
from collections import deque
from typing import Callable

import torch

from vislib.runtime import devices, progress

# How often a waiting thread wakes to report its place (and to notice a stop request).
WAIT_REPORT_SECONDS = 0.25

_held = threading.local()  # .count: how many device queues this thread holds
_on_idle: list[Callable[[], object]] = []  # called when a queue is released with nobody waiting


def holds_a_device() -> bool:
    """Whether this thread holds some device's queue (and so may run a shared network)."""
    return getattr(_held, "count", 0) > 0


class SharedNetworkError(RuntimeError):
    """A shared network was run outside `Model.running()`: a bug in the caller, never a person's mistake."""


def guard(_module, _args) -> None:
    """A forward pre-hook on every Model's network: refuse a pass by a thread without the queue.

    Without it, a stray pass (a cheap top-5, say) would fire the hooks another session's job
    registered and hand that job a stranger's activations."""
    if not holds_a_device():
        raise SharedNetworkError("A shared network ran outside Model.running(); its pass could reach another "
                                 "job's hooks.")


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
            progress.checkpoint()  # every step or batch of a long job passes here: a stop takes effect now
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None and not self._waiting:
                self._take(me)
                return
            self._waiting.append(me)
        told = False
        try:
            while True:
                with self._cond:
                    if self._owner is None and self._waiting[0] == me:
                        self._waiting.popleft()
                        self._take(me)
                        break
                    place = (self._owner is not None) + self._waiting.index(me)
                    self._cond.wait(WAIT_REPORT_SECONDS)
                # Outside the queue's own lock: the listener may raise (Streamlit stopping the
                # script), and must not hold up the others while it draws.
                if progress.listener().on_wait is not None:
                    progress.listener().on_wait(self.name, place)
                    told = True
        except BaseException:
            with self._cond:
                if me in self._waiting:
                    self._waiting.remove(me)
                self._cond.notify_all()
            raise
        if told:
            try:
                progress.listener().on_wait(self.name, 0)
            except BaseException:
                self.release()
                raise

    def _take(self, me: int) -> None:
        self._owner, self._depth = me, 1
        _held.count = getattr(_held, "count", 0) + 1

    def release(self) -> None:
        idle = False
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("This thread does not hold the device.")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                _held.count -= 1
                self._cond.notify_all()
                idle = not self._waiting
        if idle:
            for listener in _on_idle:
                listener()

    def __enter__(self) -> "DeviceQueue":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


_queues: dict[str, DeviceQueue] = {}
_queues_guard = threading.Lock()


def device_lock(device: str | torch.device) -> DeviceQueue:
    """The one queue for ``device`` (re-entrant, so a locked helper may call another)."""
    key = str(devices.indexed(torch.device(device)))
    with _queues_guard:
        if key not in _queues:
            _queues[key] = DeviceQueue(key)
        return _queues[key]




def busy() -> bool:
    """Whether any device is held or waited for."""
    return any(q.ahead() for q in list(_queues.values()))


@contextlib.contextmanager
def one_thread(device: str | torch.device = "cpu"):
    """A block of many tiny CPU operations (a t-SNE step, a small network's training step) on one
    thread, where a second costs more in synchronisation than it brings. torch's thread count is
    process-wide, so it is set and restored while this thread holds the CPU's queue: no other
    session's CPU work runs with it. On another device, nothing changes."""
    if torch.device(device).type != "cpu":
        yield
        return
    with device_lock(device):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
