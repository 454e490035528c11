"""What a page shows while its work waits for the device, or had to change to fit in memory."""
from __future__ import annotations

import contextlib
import contextvars

import streamlit as st
from streamlit.runtime.caching.cached_message_replay import in_cached_function
from streamlit.runtime.scriptrunner_utils.script_run_context import get_run_yield_check

from vislib import runtime


def _now(draw) -> None:
    """Draw as if outside any cached function: a wait seen while one runs is news of this run,
    not part of the function's result, so Streamlit must not record it for replay on a cache hit
    (where it would show a stale notice, or fail because the placeholder is not the function's).
    `in_cached_function` is Streamlit's own flag for that (internal; the version is pinned)."""
    def unrecorded():
        in_cached_function.set(False)
        draw()
    contextvars.copy_context().run(unrecorded)


def _processor(name: str) -> str:
    return "CPU" if name.startswith("cpu") else "GPU"


@contextlib.contextmanager
def reported():
    """Around a page: 'Waiting for the GPU (n ahead)' at the top while its work queues, and one
    line for each out-of-memory change (smaller batches, the CPU)."""
    waiting, notice = st.empty(), st.empty()

    def on_wait(name: str, ahead: int) -> None:
        if ahead:
            _now(lambda: waiting.info(f"Waiting for the {_processor(name)} ({ahead} ahead)...", icon="⏳"))
        else:
            _now(waiting.empty)

    def on_notice(sentence: str) -> None:
        _now(lambda: notice.warning(sentence))

    # Streamlit's own stop check (StopException when Stop is pressed or the tab is closed),
    # called by the engine at every step or batch, so a stop never waits for a whole job.
    with runtime.listening(on_wait, on_notice, get_run_yield_check()):
        yield
