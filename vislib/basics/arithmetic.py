"""Convolution arithmetic: output size, parameters and multiply-adds of one convolution, each with
its formula filled in as text, the lecture's presets, and the fully connected network of the
course notes next to a convolution over the same picture.

The output size along one side is floor((n + 2p - d(k - 1) - 1) / s) + 1, the formula of
`torch.nn.Conv2d`'s documentation (Dumoulin and Visin 2016, "A guide to convolution arithmetic").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Cells along one side of a convolution's output; ValueError when the kernel does not fit."""
    for name, value, least in (("input size", n, 1), ("kernel size", kernel, 1), ("stride", stride, 1),
                               ("padding", padding, 0), ("dilation", dilation, 1)):
        if int(value) != value or value < least:
            raise ValueError(f"The {name} must be a whole number of at least {least}, not {value}.")
    span = dilation * (kernel - 1) + 1
    if n + 2 * padding < span:
        raise ValueError(f"A {kernel} x {kernel} kernel{f' dilated by {dilation}' if dilation > 1 else ''} spans "
                         f"{span} pixels, more than the {n + 2 * padding} of the padded input.")
    return (n + 2 * padding - span) // stride + 1


@dataclass(frozen=True)
class ConvArithmetic:
    size: int          # input height = width
    channels: int      # input channels
    kernel: int
    stride: int
    padding: int
    dilation: int
    filters: int       # output channels
    out: int           # output height = width
    params: int        # weights + biases
    macs: int          # multiply-adds for one picture
    formulas: dict = field(default_factory=dict)  # "output", "params", "macs" -> the formula filled in
    leftover: int = 0  # input pixels (per side, at the end) that no window reaches

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.out, self.out, self.filters


def conv_arithmetic(size: int, channels: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                    filters: int = 1, bias: bool = True) -> ConvArithmetic:
    """Everything about one square convolution, with its formulas written out."""
    if int(channels) != channels or channels < 1 or int(filters) != filters or filters < 1:
        raise ValueError("The numbers of input channels and of filters must be whole numbers of at least 1.")
    out = output_size(size, kernel, stride, padding, dilation)
    span = dilation * (kernel - 1) + 1
    leftover = size + 2 * padding - ((out - 1) * stride + span)
    per_filter = kernel * kernel * channels
    params = filters * (per_filter + int(bias))
    macs = out * out * filters * per_filter
    d = f" - {dilation}·({kernel} - 1)" if dilation > 1 else f" - ({kernel} - 1)"
    formulas = {
        "output": f"⌊({size} + 2·{padding}{d} - 1) / {stride}⌋ + 1 = {out}",
        "params": f"{filters} · ({kernel}·{kernel}·{channels}{' + 1' if bias else ''}) = {params:,}",
        "macs": f"{out}·{out}·{filters} · {kernel}·{kernel}·{channels} = {macs:,}",
    }
    return ConvArithmetic(size, channels, kernel, stride, padding, dilation, filters, out, params, macs, formulas,
                          leftover)


# The lecture's examples, one click away: label -> the numbers of one convolution, and a note for the page.
PRESETS = {
    "AlexNet, first layer (paper)": dict(
        size=224, channels=3, kernel=11, stride=4, padding=2, dilation=1, filters=96,
        note="The paper says 224 x 224 x 3 -> 55 x 55 x 96, but (224 - 11) / 4 + 1 = 54.25 is not whole: "
             "it works with 2 pixels of padding (as here) or with a 227 px input and none."),
    "AlexNet, first layer (227 px, no padding)": dict(
        size=227, channels=3, kernel=11, stride=4, padding=0, dilation=1, filters=96,
        note="(227 - 11) / 4 + 1 = 55 exactly: the input size that makes the paper's numbers add up."),
    "AlexNet, torchvision's first layer": dict(
        size=224, channels=3, kernel=11, stride=4, padding=2, dilation=1, filters=64,
        note="torchvision follows the one-GPU variant (Krizhevsky 2014): 64 filters instead of 96."),
    "VGG, any layer": dict(
        size=224, channels=64, kernel=3, stride=1, padding=1, dilation=1, filters=64,
        note="3 x 3, stride 1, padding 1 keeps the size: two of them see 5 x 5 with fewer weights."),
    "ResNet, stem": dict(
        size=224, channels=3, kernel=7, stride=2, padding=3, dilation=1, filters=64,
        note="7 x 7 at stride 2 halves the picture at once: 224 -> 112."),
    "Dilated 3 x 3 (DeepLab)": dict(
        size=64, channels=64, kernel=3, stride=1, padding=2, dilation=2, filters=64,
        note="Dilation 2 spreads 9 weights over 5 x 5 pixels: a wider view for the same cost."),
}


def fc_vs_conv(size: int = 28, channels: int = 1, hidden: int = 32, classes: int = 10, kernel: int = 3,
               filters: int = 32) -> dict:
    """The course notes' comparison: a fully connected network on a small grey picture needs tens
    of thousands of weights in its first layer alone, a convolution a few hundred - whatever the
    picture's size, because its weights are shared by every position."""
    inputs = size * size * channels
    fc_first = inputs * hidden + hidden
    fc_total = fc_first + hidden * classes + classes
    conv = kernel * kernel * channels * filters + filters
    return {"inputs": inputs, "fc_first": fc_first, "fc_total": fc_total, "conv": conv,
            "fc_formula": f"{size}·{size}·{channels} · {hidden} + {hidden} = {fc_first:,}",
            "fc_total_formula": f"{fc_first:,} + {hidden}·{classes} + {classes} = {fc_total:,}",
            "conv_formula": f"{kernel}·{kernel}·{channels} · {filters} + {filters} = {conv:,}",
            "ratio": fc_first / conv}


def bottleneck(size: int = 28, channels: int = 192, middle: int = 16, filters: int = 32, kernel: int = 5) -> dict:
    """GoogLeNet's 1 x 1 trick: a k x k convolution straight from `channels` inputs against a 1 x 1
    reduction to `middle` channels first (inception 3a's 5 x 5 branch: 192 -> 16 -> 32 at 28 x 28)."""
    direct = conv_arithmetic(size, channels, kernel, padding=kernel // 2, filters=filters, bias=False)
    reduce = conv_arithmetic(size, channels, 1, filters=middle, bias=False)
    then = conv_arithmetic(size, middle, kernel, padding=kernel // 2, filters=filters, bias=False)
    return {"direct_params": direct.params, "direct_macs": direct.macs,
            "reduced_params": reduce.params + then.params, "reduced_macs": reduce.macs + then.macs,
            "direct_formula": direct.formulas["params"],
            "reduced_formula": f"{reduce.formulas['params']}, then {then.formulas['params']}",
            "saving": direct.params / (reduce.params + then.params)}


def sliding(picture: np.ndarray, weight: torch.Tensor, stride: int = 1, padding: int = 0,
            dilation: int = 1) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One filter slid over a picture: the output map [out, out] and the top-left corner of every
    window in the padded picture, in the order the filter visits them (row by row).

    `picture` is the network's input [C, H, W] (already normalised), `weight` one kernel [C, k, k]."""
    x = torch.as_tensor(picture, dtype=torch.float32)[None]
    w = torch.as_tensor(weight, dtype=torch.float32)[None]
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"The filter has {w.shape[1]} input channels, the picture {x.shape[1]}.")
    out = output_size(x.shape[-1], w.shape[-1], stride, padding, dilation)
    result = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)[0, 0].numpy()
    corners = [(r * stride, c * stride) for r in range(out) for c in range(out)]
    return result, corners
