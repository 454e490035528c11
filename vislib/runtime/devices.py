"""Which device the engine runs on: CUDA when present, else Apple MPS, else the CPU."""
from __future__ import annotations

import contextlib
import os

import torch


def default_device() -> torch.device:
    """CUDA when present, else Apple MPS, else CPU; ``VISLIB_DEVICE`` overrides."""
    wanted = os.environ.get("VISLIB_DEVICE", "").strip()
    if wanted:
        try:
            return indexed(torch.device(wanted))
        except RuntimeError as err:
            raise ValueError(f"VISLIB_DEVICE={wanted!r} is not a device name PyTorch knows (try cpu or cuda).") from err
    if torch.cuda.is_available():
        return indexed(torch.device("cuda"))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve(device: str | torch.device | None) -> torch.device:
    return default_device() if device is None else indexed(torch.device(device))


def indexed(device: torch.device) -> torch.device:
    """'cuda' as 'cuda:0' (the current GPU): tensors always name their GPU, so a model's device
    compares equal to its tensors', and one GPU has one queue whichever way it was named."""
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def batch_size(device: str | torch.device, *, cpu: int, gpu: int) -> int:
    """How many pictures a batch holds on `device`: `gpu` on an accelerator (fewer launches); on a
    CPU `cpu`, small enough that a batch takes well under a second on 2 cores, since a stop takes
    effect between batches."""
    return cpu if torch.device(device).type == "cpu" else gpu


def many_passes(device: str | torch.device):
    """The precision for methods that average thousands of passes (RISE): on a CPU with bfloat16
    instructions (AVX512-BF16, AMX), bfloat16 autocast - 2.5x faster on this project's 2-core
    machine, and the class probabilities move by at most about 0.005, which an average over
    thousands of masks does not notice; elsewhere float32 as usual. Thread-local: other jobs'
    passes keep their own precision."""
    if torch.device(device).type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: str | torch.device) -> str:
    """A short line for the sidebar, e.g. 'GPU: NVIDIA H100 (80 GB)' or 'CPU (2 threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GB)"
    if device.type == "mps":
        return "GPU: Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"
