"""Which device the engine runs on, and one lock per device.

The lock guards work that changes a shared network's state (hooks, ``requires_grad``):
Streamlit serves every browser session from threads of one process, and the networks
are shared between them, so two sessions must not hook the same network at once.
"""
from __future__ import annotations

import os
import threading

import torch

_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def default_device() -> torch.device:
    """CUDA when present, else Apple MPS, else CPU; ``VISLIB_DEVICE`` overrides."""
    wanted = os.environ.get("VISLIB_DEVICE", "").strip()
    if wanted:
        try:
            return torch.device(wanted)
        except RuntimeError as err:
            raise ValueError(f"VISLIB_DEVICE={wanted!r} is not a device name PyTorch knows (try cpu or cuda).") from err
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve(device: str | torch.device | None) -> torch.device:
    return default_device() if device is None else torch.device(device)


def device_lock(device: str | torch.device) -> threading.RLock:
    """The one lock for ``device`` (re-entrant, so a locked helper may call another)."""
    key = str(torch.device(device))
    with _locks_guard:
        return _locks.setdefault(key, threading.RLock())


def describe(device: str | torch.device) -> str:
    """A short line for the sidebar, e.g. 'GPU: NVIDIA H100 (80 GB)' or 'CPU (2 threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GB)"
    if device.type == "mps":
        return "GPU: Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"
