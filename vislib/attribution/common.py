"""What every attribution method shares: checking the picture, choosing the class, and running
the shared network so that Captum's hooks work on it and leave it exactly as found.

* `prepare(model, x, target)`: one picture [1,3,H,W] on the model's device, and the class
  (None: the top one), or ValueError with one sentence;
* `explaining(model)`: holds the network's queue (`Model.running()`), switches every `inplace`
  flag off for the block (Captum's hooks break on in-place modules), adds a stop point before
  each pass, and restores all in `finally`;
* `seeded(device, seed)`: the global RNG seeded for one block (Captum's noise draws from it),
  restored after it; only inside `Model.running()`, whose queue keeps other jobs out meanwhile.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from vislib.models import Model
from vislib.runtime import checkpoint


def check_picture(x: torch.Tensor) -> None:
    """ValueError unless x is one colour picture, a batch [1,3,H,W]."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"Attribution explains one picture at a time: expected a batch [1,3,H,W], "
                         f"got {tuple(x.shape)}.")


def top_class(model: Model, x: torch.Tensor) -> int:
    """The class the network gives the picture x [1,3,H,W] the highest score."""
    with model.running() as net, torch.inference_mode():
        return int(net(x.to(model.device))[0].argmax())


def prepare(model: Model, x: torch.Tensor, target: int | None) -> tuple[torch.Tensor, int]:
    """x checked, detached, float32 on the model's device; the class checked (None: the top one)."""
    check_picture(x)
    x = x.detach().to(model.device, torch.float32)
    if target is None:
        return x, top_class(model, x)
    return x, check_class(model, target)


def check_class(model: Model, target: int) -> int:
    """The class as an int, or ValueError with one sentence when the network has no such class."""
    n = len(model.labels)
    if not 0 <= int(target) < n:
        raise ValueError(f"The class {target} does not exist: {model.name} has classes 0 to {n - 1}.")
    return int(target)


@contextlib.contextmanager
def explaining(model: Model) -> Iterator[nn.Module]:
    """The network, hooks-safe for one call: in-place flags off, a stop point before every pass
    (Captum's methods run many batches in one call), all restored in `finally`."""
    with model.running() as net:
        flipped = [m for m in net.modules() if getattr(m, "inplace", None) is True]
        for m in flipped:
            m.inplace = False
        stop_point = net.register_forward_pre_hook(lambda _module, _args: checkpoint())
        try:
            yield net
        finally:
            stop_point.remove()
            for m in flipped:
                m.inplace = True


@contextlib.contextmanager
def seeded(device: torch.device, seed: int) -> Iterator[None]:
    """The CPU's and `device`'s random generators seeded for the block and restored after it."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for d in cuda:
            with torch.cuda.device(d):
                torch.cuda.manual_seed(seed)
        yield


def finished(values: torch.Tensor) -> torch.Tensor:
    """A map as every method returns it: detached, float32, on the CPU."""
    return values.detach().float().cpu()


def colour_max(grad: torch.Tensor) -> torch.Tensor:
    """Max over colour of |gradient|, Simonyan et al.'s reduction of a [1,3,H,W] gradient."""
    return finished(grad[0].abs().amax(0))


def colour_scale(maps) -> tuple[float, float, str, str]:
    """(vmin, vmax, overlay colour map, raw colour map) for drawing maps on one scale: signed maps
    (integrated gradients, occlusion) get a diverging scale centred on 0, the others start at 0."""
    lo, hi = min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)
    if lo < 0:
        top = max(-lo, hi)
        return -top, top, "RdBu_r", "RdBu_r"
    return 0.0, hi, "jet", "viridis"
