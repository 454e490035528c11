"""Closed browser tabs: shut their sessions down properly, so a class leaves no memory behind.

Streamlit keeps a closed tab's session for `server.disconnectedSessionTTL` seconds so that a
reconnect finds it; when that time runs out it only forgets the session and never shuts it
down, so its pictures stay in Streamlit's media store for good (bench/load.py: eight sessions
left the server 28% above its starting memory). This thread shuts down every session that has
been disconnected for GRACE seconds, a little before Streamlit would forget it. It uses the
runtime's session manager (Streamlit 1.67, pinned): the sessions it lists minus the active ones
are the disconnected ones, and `Runtime.close_session` must run on the runtime's event loop.
"""
from __future__ import annotations

import logging
import threading
import time

import streamlit as st
from streamlit.runtime import Runtime

from vislib.runtime import freeze_long_lived, release_memory

GRACE = 30.0  # seconds; below .streamlit/config.toml's disconnectedSessionTTL (45)
EVERY = 5.0

_log = logging.getLogger(__name__)


def disconnected(runtime: Runtime) -> set[str]:
    manager = runtime._session_mgr
    active = {info.session.id for info in manager.list_active_sessions()}
    return {info.session.id for info in manager.list_sessions()} - active


def reap(runtime: Runtime, first_seen: dict[str, float], now: float, grace: float = GRACE) -> list[str]:
    """Close the sessions disconnected for `grace` seconds (as far as `first_seen` knows);
    returns their ids."""
    gone = disconnected(runtime)
    for session_id in set(first_seen) - gone:  # reconnected, or closed already
        del first_seen[session_id]
    closing = [s for s in gone if now - first_seen.setdefault(s, now) >= grace]
    loop = runtime._get_async_objs().eventloop
    for session_id in closing:
        loop.call_soon_threadsafe(runtime.close_session, session_id)
        del first_seen[session_id]
    return closing


def one_round(runtime: Runtime | None, state: dict, now: float) -> None:
    """What the reaper does every EVERY seconds: hand back the memory of the sessions it shut
    down in the last two rounds, then shut down those gone for GRACE seconds."""
    if state.get("release"):
        # Their pictures and state are freed once the event loop has shut them down and their
        # script threads have ended; glibc keeps freed memory until told (the device queue's own
        # trim runs only after device jobs, long before the tab closed).
        release_memory()
        state["release"] -= 1
    if runtime is not None and reap(runtime, state.setdefault("first_seen", {}), now):
        state["release"] = 2


def _forever() -> None:
    state: dict = {}
    while True:
        time.sleep(EVERY)
        try:
            one_round(Runtime.instance() if Runtime.exists() else None, state, time.monotonic())
        except Exception:  # never let cleaning up take the server down
            _log.exception("could not close disconnected sessions")


@st.cache_resource(show_spinner=False)
def start_reaper() -> threading.Thread:
    """Once per server process."""
    thread = threading.Thread(target=_forever, name="session-reaper", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def freeze_imports() -> int:
    """Once per server process, after the app's imports: keep Streamlit's collection after every
    rerun cheap (vislib.runtime.freeze_long_lived). Returns how many objects it froze."""
    return freeze_long_lived()
