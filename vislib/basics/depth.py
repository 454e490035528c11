"""Why depth needs shortcuts: a plain deep convolutional network and the same network with
residual shortcuts (He et al. 2016), at random initialisation and after a short training run.

Both are built the way a student would write them - `nn.Conv2d` with PyTorch's default
initialisation, ReLU, no normalisation - so that what goes wrong is what went wrong before ResNet:
in the plain stack the gradient reaching the first layers shrinks layer by layer, and the deep
network trains worse than its shallow twin; with a shortcut around every two layers the gradient
has a path that skips them, and the deep network trains as well as the shallow one.

Reproducible without touching the process's random generator: each network is built on the
meta device and initialised with its own `torch.Generator` (the same uniform ranges as
PyTorch's defaults), and the training batches are drawn with another.
"""
from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vislib.runtime import one_thread, report

WIDTH = 16          # channels of every hidden layer
PICTURE = 14        # Fashion-MNIST pictures are averaged down from 28 to 14 px: the same lesson, 4x cheaper


class DepthNet(nn.Module):
    """`depth` weight layers: a stride-2 stem convolution, depth - 2 3 x 3 convolutions (in pairs,
    each pair bypassed by a shortcut when `residual`), and a linear classifier."""

    def __init__(self, depth: int, residual: bool, width: int = WIDTH, classes: int = 10):
        super().__init__()
        if depth < 4 or depth % 2:
            raise ValueError(f"The depth must be an even number of layers, at least 4, not {depth}.")
        self.residual = residual
        self.stem = nn.Conv2d(1, width, 3, stride=2, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(depth - 2))
        self.head = nn.Linear(width, classes)

    def weight_layers(self) -> list[nn.Module]:
        return [self.stem, *self.convs, self.head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        for i in range(0, len(self.convs), 2):
            y = self.convs[i + 1](F.relu(self.convs[i](x)))
            x = F.relu(x + y if self.residual else y)
        return self.head(x.mean((2, 3)))


def build(depth: int, residual: bool, seed: int = 0, width: int = WIDTH) -> DepthNet:
    """A DepthNet initialised from `seed` like PyTorch's defaults (weights and biases uniform in
    +-1/sqrt(fan_in)), without drawing from the global random generator."""
    with torch.device("meta"):
        net = DepthNet(depth, residual, width)
    net = net.to_empty(device="cpu")
    g = torch.Generator().manual_seed(seed)
    for layer in net.weight_layers():
        bound = 1 / math.sqrt(layer.weight[0].numel())  # kaiming_uniform_(a=sqrt(5)) is this bound too
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound, generator=g)
            layer.bias.uniform_(-bound, bound, generator=g)
    return net


@functools.lru_cache(maxsize=4)
def fashion_tensors(n: int | None = None, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The first n Fashion-MNIST pictures of a split [N, 1, 14, 14] (normalised) and labels [N].
    Kept for the next call (the files take a second to read): do not change them in place."""
    from vislib.data.collections import fashion_mnist
    images, labels, _ = fashion_mnist(split)
    x = torch.from_numpy(images[:n]).float().div_(255)[:, None]
    x = F.avg_pool2d(x, 28 // PICTURE)
    return (x - 0.286) / 0.353, torch.from_numpy(np.asarray(labels[:n])).long()


def gradient_norms(net: DepthNet, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The norm of the loss's gradient with respect to each weight layer's weights, first to last:
    how much of the learning signal reaches each layer."""
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    return np.array([float(layer.weight.grad.norm()) for layer in net.weight_layers()])


def at_initialisation(depth: int, seed: int = 0, batch: int = 128) -> dict[str, np.ndarray]:
    """Per-layer gradient norms of the plain and the residual network of `depth` layers, both
    freshly initialised from `seed`, on the same batch of Fashion-MNIST pictures."""
    x, y = fashion_tensors(batch, "test")
    with one_thread():
        return {kind: gradient_norms(build(depth, kind == "residual", seed), x, y) for kind in ("plain", "residual")}


RUNS = [("plain", 8), ("plain", None), ("residual", None)]  # None: the deep depth chosen


def train_race(depth: int = 32, shallow: int = 8, steps: int = 150, batch: int = 64, lr: float = 3e-3, seed: int = 0,
               progress=None) -> dict:
    """Train the shallow plain network, the deep plain one and the deep residual one for `steps`
    steps each (Adam, the same batches for all) and measure each on 2,000 held-out pictures.

    Returns {"runs": [{"name", "depth", "residual", "loss": [per step], "accuracy", "seconds"}],
    "steps", "stopped"}; `progress(done, total, **info)` after every step, False stops the run
    (every network is then measured as far as it got)."""
    x_train, y_train = fashion_tensors(steps * batch)
    x_test, y_test = fashion_tensors(2000, "test")
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))
    runs, stopped = [], False
    plan = [(kind, shallow if d is not None else depth) for kind, d in RUNS]
    total = steps * len(plan)
    for r, (kind, d) in enumerate(plan):
        net = build(d, kind == "residual", seed)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        losses, start = [], time.perf_counter()
        for step in range(steps):
            if stopped:
                break
            pick = order[step * batch:(step + 1) * batch]
            with one_thread():  # hundreds of tiny operations: 0.08 s a step on one thread, 0.4-1.1 s on two
                loss = F.cross_entropy(net(x_train[pick]), y_train[pick])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            losses.append(float(loss.detach()))
            stopped = not report(progress, r * steps + step + 1, total, loss=losses[-1], run=r)
        with torch.no_grad(), one_thread():
            accuracy = float((net(x_test).argmax(1) == y_test).float().mean())
        runs.append({"name": f"{kind} {d} layers", "depth": d, "residual": kind == "residual", "loss": losses,
                     "accuracy": accuracy, "seconds": time.perf_counter() - start})
    return {"runs": runs, "steps": steps, "stopped": stopped}
