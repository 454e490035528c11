"""Progress and stop: ONE protocol for every long job of the engine.

A long job takes `progress=None` and, at every step or batch, calls `report(progress, done, total,
preview=None, **info)`, which returns False when the job should stop (it then returns what it has
made so far). The caller stops a job in one of two ways that end in the same place:
- its `progress` callback returns False (the Python API, the command line);
- the thread's listener check raises (`listening(on_check=...)`: the app's Stop button or a
  closed tab); the exception unwinds the job, and hooks and queues are released in `finally`.
The callback is called as `progress(done, total)` or, with a picture to show, `progress(done, total,
preview)`, plus keyword information (a loss, ...): `def progress(done, total, preview=None, **info)`
fits every call.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Callable

Progress = Callable[..., object]


def report(progress: Progress | None, done: int, total: int, preview=None, **info) -> bool:
    """Tell `progress` how far the job is; False when the job should stop now."""
    checkpoint()
    if progress is None:
        return True
    args = (done, total) if preview is None else (done, total, preview)
    return progress(*args, **info) is not False


def within(progress: Progress | None, offset: int, total: int) -> Progress | None:
    """A part of a larger job: its steps reported as offset + step of the whole job's total."""
    if progress is None:
        return None
    return lambda done, _total, *rest, **info: progress(offset + done, total, *rest, **info)


@dataclasses.dataclass
class _Listener:
    on_wait: Callable[[str, int], object] | None = None  # (device, n ahead; 0 when its turn came)
    on_notice: Callable[[str], object] | None = None      # one sentence, e.g. a CPU fallback
    on_check: Callable[[], object] | None = None          # raises when the work should stop


_local = threading.local()


def listener() -> _Listener:
    if not hasattr(_local, "listener"):
        _local.listener = _Listener()
    return _local.listener


@contextlib.contextmanager
def listening(on_wait: Callable[[str, int], object] | None = None, on_notice: Callable[[str], object] | None = None,
              on_check: Callable[[], object] | None = None):
    """For this thread's work: call on_wait(device, n_ahead) while it waits for a device,
    on_notice(sentence) when work had to change (smaller batches, the CPU), and on_check() at
    every step or batch, which raises to stop the work (a Stop button, a closed browser tab)."""
    old = listener()
    _local.listener = _Listener(on_wait, on_notice, on_check)
    try:
        yield
    finally:
        _local.listener = old


def checkpoint() -> None:
    """A point where work may be stopped: the listener's on_check raises if it should."""
    if listener().on_check is not None:
        listener().on_check()


def notify(sentence: str) -> None:
    """Tell whoever listens on this thread (the page, the CLI); silent when nobody does."""
    if listener().on_notice is not None:
        listener().on_notice(sentence)


