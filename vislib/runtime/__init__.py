"""Where work runs: devices, the fair queue every shared network runs through, progress and stop.

- `devices`: which device (CUDA, MPS, CPU; `VISLIB_DEVICE`).
- `queue`: one first-come-first-served queue per device; `Model.running()` holds it, and a shared
  network refuses a pass outside it.
- `progress`: the one progress protocol and the one way a job is stopped.
- `memory`: out-of-memory fallbacks (smaller batches, then a CPU copy); freed memory kept for the
  next pass while busy and handed back to the system when idle.
"""
from vislib.runtime.devices import batch_size, default_device, describe, indexed, many_passes, resolve
from vislib.runtime.memory import cpu_twin, falls_back, freeze_long_lived, release_memory, reuse_freed_memory
from vislib.runtime.progress import Progress, checkpoint, listening, notify, report, within
from vislib.runtime.queue import DeviceQueue, SharedNetworkError, device_lock, holds_a_device, one_thread

__all__ = ["DeviceQueue", "Progress", "SharedNetworkError", "batch_size", "checkpoint", "cpu_twin", "default_device",
           "describe", "device_lock", "falls_back", "freeze_long_lived", "holds_a_device", "indexed", "listening",
           "many_passes", "notify", "one_thread", "release_memory", "report", "resolve", "reuse_freed_memory", "within"]
