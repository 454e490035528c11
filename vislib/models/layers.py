"""The layer catalogue: for each named stage, its channels, stride and receptive field.

No library publishes receptive fields for arbitrary torchvision and timm networks, so we
measure the geometry with one forward pass at the model's input size: every convolution
and pooling module turns (receptive field, jump, centre of cell 0) of its input into that
of its output with the textbook recurrence (Araujo et al., Distill 2019). Tensors made by
functional code between modules (residual sums, concatenations) take the largest receptive
field seen so far at their resolution, which is what a sum or concatenation of branches has.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# TensorFlow-style "same" padding in timm's tf_* networks is decided at run time. Imported
# without a fallback: timm is a requirement, and a silently empty tuple once shifted the boxes of
# EfficientNet-Lite from blocks.2 on by 4 to 20 pixels, at each 5x5 stride-2 stage (timm.layers
# does not export MaxPool2dSame, so the old combined import always failed).
from timm.layers.conv2d_same import Conv2dSame
from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame

_SAME_PADDING = (Conv2dSame, MaxPool2dSame, AvgPool2dSame)


class LayerError(KeyError, ValueError):
    """A layer name the network does not have: the one error every function raises for it.

    A KeyError (a name looked up in the network's modules) and a ValueError (a bad argument), so
    code catching either catches it; the message is one sentence naming the layers there are."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class LayerInfo:
    name: str             # a key of net.named_modules()
    kind: str             # stem, conv, pool, block, fire, inception, head
    channels: int
    stride: int           # input pixels per output cell
    receptive_field: int  # input pixels seen by one cell (one side of the square)
    offset: float         # input coordinate of the centre of cell 0
    size: tuple[int, int]  # output height and width at the model's input size
    # [first, last + 1) of the input pixels that some cell of this layer sees at the model's input
    # size: an unpadded strided window can leave the last pixels unread, and zero padding added
    # by a later layer does not bring them back, so a box is clipped to this span, not the image.
    reach: tuple[int, int] | None = None

    def box(self, row: int, col: int, image_size: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of cell (row, col)'s receptive field, clipped to the image."""
        half = (self.receptive_field - 1) / 2
        lo, hi = self.reach or (0, image_size)

        def span(i: int) -> tuple[int, int]:
            centre = self.offset + i * self.stride
            return (max(0, lo, math.floor(centre - half)),
                    min(image_size, hi, math.ceil(centre + half + 1)))

        (x0, x1), (y0, y1) = span(col), span(row)
        return x0, y0, x1, y1


@dataclass(frozen=True)
class _Geometry:
    rf: float
    jump: float
    start: float
    lo: float = 0.0             # the input pixels [lo, hi) that some cell sees
    hi: float = math.inf


def _pair(v) -> int:
    return v[0] if isinstance(v, (tuple, list)) else v


def _window_geometry(module: nn.Module, g: _Geometry, n_in: int, n_out: int) -> _Geometry:
    k = _pair(module.kernel_size)
    s = _pair(module.stride) or k
    d = _pair(getattr(module, "dilation", 1))
    k_eff = d * (k - 1) + 1
    padding = getattr(module, "padding", 0)
    if isinstance(module, _SAME_PADDING) or padding == "same":
        pad_left = max((n_out - 1) * s + k_eff - n_in, 0) // 2
    elif padding == "valid":
        pad_left = 0
    else:
        pad_left = _pair(padding)
    rf, jump, start = g.rf + (k_eff - 1) * g.jump, g.jump * s, g.start + ((k_eff - 1) / 2 - pad_left) * g.jump
    half = (rf - 1) / 2  # the first and the last cell bound what the layer sees; padding sees nothing
    return _Geometry(rf, jump, start, max(g.lo, start - half), min(g.hi, start + (n_out - 1) * jump + half + 1))


_WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


class _Tracker:
    """Each 4-D tensor's geometry as a forward pass makes it. A tensor no hook saw made (a residual
    sum, a concatenation) takes the widest receptive field seen at its resolution."""

    def __init__(self):
        self.geometry: dict[int, _Geometry] = {}
        self.alive: list[torch.Tensor] = []  # keeps tensors alive so that their id() is not reused
        self.widest: dict[tuple[int, int], _Geometry] = {}

    def record(self, t: torch.Tensor, g: _Geometry | None) -> None:
        if g is None or t.dim() != 4:
            return
        self.alive.append(t)
        self.geometry[id(t)] = g
        key = tuple(t.shape[2:])
        if key not in self.widest or g.rf > self.widest[key].rf:
            self.widest[key] = g

    def known(self, t) -> _Geometry | None:
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            return None
        return self.geometry.get(id(t)) or self.widest.get(tuple(t.shape[2:]))


def measure(net: nn.Module, input_size: int, catalogue: list[tuple[str, str]],
            in_channels: int = 3, device: torch.device | str = "cpu") -> list[LayerInfo]:
    """Run one forward pass and return a LayerInfo for each (name, kind) of the catalogue."""
    tracker = _Tracker()
    record, known = tracker.record, tracker.known
    wanted = dict(catalogue)
    found: dict[str, LayerInfo] = {}

    def hook(name: str, module: nn.Module):
        def run(_m, inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            g_in = known(inputs[0]) if inputs else None
            if isinstance(module, _WINDOWED):
                g = _window_geometry(module, g_in, inputs[0].shape[2], output.shape[2]) if g_in else None
            elif next(module.children(), None) is None:  # a leaf: norm, activation, dropout...
                same = output.dim() == 4 and inputs[0].dim() == 4 and output.shape[2:] == inputs[0].shape[2:]
                g = g_in if same else None
            else:  # a container: its output may come from functional code (a sum, a concat)
                g = known(output)
            record(output, g)
            if name in wanted and g is not None:
                found[name] = LayerInfo(name, wanted[name], int(output.shape[1]), round(g.jump),
                                        round(g.rf), g.start, (int(output.shape[2]), int(output.shape[3])),
                                        (math.floor(g.lo), math.ceil(g.hi)))
        return run

    handles = [m.register_forward_hook(hook(n, m)) for n, m in net.named_modules() if n]
    try:
        x = torch.zeros(1, in_channels, input_size, input_size, device=device)
        record(x, _Geometry(1.0, 1.0, 0.0, 0.0, float(input_size)))
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    missing = [n for n, _ in catalogue if n not in found]
    if missing:
        raise RuntimeError(f"layer catalogue names not measured: {missing}")
    return [found[n] for n, _ in catalogue]
