"""Long work on a page: a Run button, a progress bar, live previews and a Stop button.

Streamlit interrupts a running script when a person clicks any widget: the next `st.*` call
inside our progress callback raises, the exception unwinds through vislib (whose hooks and
locks are released in `finally` blocks), and the script reruns. So "Stop" is an ordinary
button, and what the job had made so far is kept in the session to be shown after the rerun.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import streamlit as st


def run(key: str, job: Callable[[Callable], Any], label: str = "Run", preview_every: float = 0.3):
    """Show a Run button; when pressed, call `job(progress)` with a live progress display.

    `progress(step, total, preview=None, **info)` is the vislib callback; it returns True. Each
    preview (a PIL image, at most every `preview_every` seconds) replaces the last one on screen.
    Returns the dict kept for this job: {"result", "preview", "step", "total", "stopped",
    "seconds", "history"} - `history` holds (step, info) pairs, e.g. a loss curve - or None
    before the first run.
    """
    kept = st.session_state.get(f"job:{key}")
    start_col, stop_col = st.columns([1, 1])
    pressed = start_col.button(label, key=f"run:{key}", type="primary")
    stop_col.button("Stop", key=f"stop:{key}", disabled=not pressed,
                    help="Stops the work and keeps the best result so far.")
    if not pressed:
        if kept and kept["stopped"]:
            st.info(f"Stopped at step {kept['step']} of {kept['total']}; showing what it had made.")
        return kept

    kept = {"result": None, "preview": None, "step": 0, "total": 0, "stopped": True, "seconds": 0.0, "history": []}
    st.session_state[f"job:{key}"] = kept
    bar = st.progress(0.0, text="Starting...")
    shown = st.empty()
    started = last_preview = time.perf_counter()

    def progress(step: int, total: int, preview=None, **info) -> bool:
        nonlocal last_preview
        kept.update(step=step, total=total, seconds=time.perf_counter() - started)
        if info:
            kept["history"].append((step, info))
        if preview is not None:
            kept["preview"] = preview
            if time.perf_counter() - last_preview >= preview_every or step == total:
                shown.image(preview, caption=f"step {step} of {total}")
                last_preview = time.perf_counter()
        bar.progress(min(1.0, step / max(total, 1)), text=f"Step {step} of {total}")
        return True

    kept["result"] = job(progress)
    kept.update(stopped=False, seconds=time.perf_counter() - started)
    bar.empty()
    shown.empty()
    return kept
