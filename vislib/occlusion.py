"""Occlusion (Zeiler & Fergus): slide a grey window over the picture and watch the class score drop.

The map equals Captum's `Occlusion` (window over all three colours): each pixel gets the average,
over every window position covering it, of (clean score - occluded score), score = the target logit.

Captum runs the whole network once per window position. Most of those runs repeat work: a
window changes only the cells of each layer whose receptive field meets it, so (after Nakandala
et al., SIGMOD 2019, "Incremental and approximate inference for faster occlusion-based CNN
explanations") we keep the clean picture's activations and, layer by layer, recompute only the
changed box of each occluded copy, batching the copies; once a box covers most of its map the
rest of the network runs on whole maps, batched. No library does this, hence the hand-written
executor below; it walks a torch.fx graph of a private copy of the network, so it needs no
per-architecture code. Networks that torch.fx cannot trace fall back to plain batched runs.

On a CPU the executor slices its boxes copy by copy. On a GPU that was slower than plain wide
batches (lite0, 224 px, window 16, stride 8, H100: 0.43 s against 0.12 s; cuDNN's autotuning took
plain to 0.10 s, but its first two runs took 12 s each, so it stays off): each slice waited on
Python. There the executor reads its boxes with index tensors instead, a few launches per layer
whatever the batch, and `_Race` keeps whichever way the first runs found faster on that card.
"""
from __future__ import annotations

import copy
from collections import Counter
import math
import operator
import time
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from . import render
from .device import device_lock, falls_back
from .models import Model

Progress = Callable[..., object]


# ---------------------------------------------------------------- window geometry (as Captum)

def positions(size: int, window: int, stride: int) -> list[int]:
    """Window starts along one side, as Captum places them (the last one may hang over the edge)."""
    if window < 1 or stride < 1:
        raise ValueError("The occlusion window and stride must be at least 1 pixel.")
    if window > size:
        raise ValueError(f"The occlusion window ({window} px) is larger than the picture ({size} px).")
    if stride > window and size > window:
        raise ValueError(f"The stride ({stride} px) must not be larger than the window ({window} px).")
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def _fill(x: torch.Tensor, baseline) -> torch.Tensor:
    """The occluding colour as a [1,C,1,1] tensor (a float fills every channel alike)."""
    fill = torch.as_tensor(baseline, dtype=x.dtype).to(x.device)
    if fill.numel() not in (1, x.shape[1]):
        raise ValueError(f"The fill must be one number or one per colour channel ({x.shape[1]}).")
    return fill.reshape(1, -1, 1, 1).expand(1, x.shape[1], 1, 1)


def _assemble(drops: torch.Tensor, rows: list[int], cols: list[int], window: int, size) -> torch.Tensor:
    """Captum's map from the score drops [len(rows), len(cols)]: per pixel, the mean drop of the
    windows covering it; NaN drops (not evaluated) are left out."""
    total = torch.zeros(size, dtype=torch.float64)
    count = torch.zeros(size, dtype=torch.float64)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if not math.isnan(drops[i, j]):
                total[r:r + window, c:c + window] += drops[i, j]
                count[r:r + window, c:c + window] += 1
    return (total / count.clamp(min=1)).float()


# ---------------------------------------------------------------- the incremental executor

_POINTWISE_MODULES = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid,
                      nn.GELU, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.Identity, nn.Dropout)
_POINTWISE_FUNCTIONS = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul,
                        torch.relu, F.relu, F.relu6, F.hardtanh, F.silu, F.hardswish, F.hardsigmoid, F.gelu,
                        torch.sigmoid, F.sigmoid, torch.tanh}
_POINTWISE_METHODS = {"relu", "sigmoid", "add", "mul", "contiguous", "clone"}
FULL_FRACTION = 0.7  # a box larger than this share of its map costs more to gather than it saves
TAIL_BATCH = 64  # copies a batch in the layers after the cut (whole small maps)


@dataclass
class Box:
    """Occluded copies of one activation [1,C,H,W] that equal the clean one outside a box each:
    copy b differs only inside rows r[b]:r[b]+h, columns c[b]:c[b]+w, where it holds values[b]."""
    r: torch.Tensor
    c: torch.Tensor
    values: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        return self.values.shape[-2], self.values.shape[-1]


class _Same:
    """A value that no occlusion changes (weights, constants)."""


SAME = _Same()


class _Tracer(fx.Tracer):
    """Keeps convolutions and batch norms (timm's TF-"same" and norm+act variants too) as leaves:
    their forwards branch on the input's size, which symbolic tracing cannot follow."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) or super().is_leaf_module(m, qualname)


def _pointwise_module(m: nn.Module) -> bool:
    if type(m).__name__ == "BatchNormAct2d":  # timm's norm, (eval) dropout, activation in one
        return _pointwise_module(m.drop) and _pointwise_module(m.act)
    if isinstance(m, nn.BatchNorm2d):
        return type(m) is nn.BatchNorm2d
    if type(m) is nn.Sequential:  # what is left of a folded BatchNormAct2d
        return all(_pointwise_module(part) for part in m)
    return isinstance(m, _POINTWISE_MODULES)


def _plain_conv(m: nn.Module) -> bool:
    """A convolution whose forward is F.conv2d with its own weight (subclasses may change that)."""
    return type(m) is nn.Conv2d or type(m).__name__ == "Conv2dSame"


def _conv_pads(m: nn.Conv2d, height: int, width: int) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) zero padding of a convolution, None if we cannot say."""
    if not _plain_conv(m) or m.padding_mode != "zeros":
        return None
    k, s, d = m.kernel_size, m.stride, m.dilation
    if type(m).__name__ == "Conv2dSame":  # TF "same": asymmetric, from the FULL input size
        ph = max((math.ceil(height / s[0]) - 1) * s[0] + (k[0] - 1) * d[0] + 1 - height, 0)
        pw = max((math.ceil(width / s[1]) - 1) * s[1] + (k[1] - 1) * d[1] + 1 - width, 0)
        return ph // 2, ph - ph // 2, pw // 2, pw - pw // 2
    if isinstance(m.padding, str):
        return None
    return m.padding[0], m.padding[0], m.padding[1], m.padding[1]


class _Executor:
    """Runs the traced copy on the clean picture (keeping every activation), then on batches of
    occluded copies, each node computing only what its inputs' boxes can change."""

    def __init__(self, net: nn.Module):
        net = copy.deepcopy(net)
        for m in net.modules():  # in-place ops would overwrite the kept clean activations
            if hasattr(m, "inplace"):
                m.inplace = False
        self.graph = _Tracer().trace(net)
        self.nodes = list(self.graph.nodes)  # in order; head and tail slice it for every batch
        self.modules = dict(net.named_modules())
        self.net = net
        self._fold_batch_norms()
        # (input shape, window, first start) -> cut: it depends on the geometry alone, and finding it
        # runs the head once more, a few hundred small launches on a GPU
        self.cuts: dict = {}

    def _fold_batch_norms(self) -> None:
        """Fold each batch norm into the convolution before it (on our copy): one pass over the
        activations less per layer, the biggest cost after the convolutions themselves."""
        calls = Counter(node.target for node in self.graph.nodes if node.op == "call_module")
        for node in self.graph.nodes:
            conv = self.modules.get(node.target) if node.op == "call_module" else None
            if conv is None or not _plain_conv(conv) or len(node.users) != 1 or calls[node.target] != 1:
                continue
            user = next(iter(node.users))
            bn = self.modules.get(user.target) if user.op == "call_module" else None
            if not isinstance(bn, nn.BatchNorm2d) or not _pointwise_module(bn) or bn.running_mean is None \
                    or calls[user.target] != 1 or len(user.all_input_nodes) != 1:
                continue
            rest = nn.Identity() if type(bn) is nn.BatchNorm2d else nn.Sequential(bn.drop, bn.act)
            conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                          bn.eps, bn.weight, bn.bias)
            conv.requires_grad_(False)
            self.modules[user.target] = rest

    # -- clean pass
    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """Runs the clean picture, keeping every activation for the occluded passes; the output."""
        env: dict = {}
        for node in self.graph.nodes:
            if node.op == "placeholder":
                env[node] = x
            elif node.op == "output":
                env[node] = _map(node.args[0], env)
            else:
                env[node] = self._call(node, _map(node.args, env), _map(node.kwargs, env))
        self.clean_env, self.padded = env, {}
        return env[node]

    def _call(self, node: fx.Node, args, kwargs):
        if node.op == "call_module":
            return self.modules[node.target](*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        if node.op == "get_attr":
            obj = self.net
            for part in node.target.split("."):
                obj = getattr(obj, part)
            return obj
        raise RuntimeError(f"unexpected node {node.op}")

    # -- occluded pass
    def occluded(self, start: Box) -> torch.Tensor:
        """The network's output for each occluded copy."""
        return self.tail(self.head(start, len(self.nodes)), len(self.nodes))

    def head(self, start: Box, cut: int) -> dict:
        """The first `cut` nodes on boxes: their states (Box, SAME or whole tensors)."""
        env: dict = {}
        for node in self.nodes[:cut]:
            env[node] = start if node.op == "placeholder" else self._step(node, env)
        return env

    def tail(self, env: dict, cut: int) -> torch.Tensor:
        """The nodes from `cut` on, given the states of the nodes before."""
        for node in self.nodes[cut:]:
            if node.op == "output":
                return self._full(node.args[0], env)
            env[node] = self._step(node, env)
        raise RuntimeError("graph without output")

    def cut(self, start: Box) -> int:
        """Where every later node sees whole maps (its box covered most of its map): from there on
        the copies gain nothing from boxes, and run faster as one large batch (in `_drops`)."""
        env = self.head(start, len(self.nodes) - 1)
        nodes = self.nodes
        last_box = max((i for i, n in enumerate(nodes[:-1]) if isinstance(env[n], Box)), default=0)
        return last_box + 1

    def live(self, env: dict, cut: int) -> dict:
        """The states the tail reads, each as whole tensors (boxes pasted into the clean maps)."""
        nodes = self.nodes
        later = set(nodes[cut:])
        return {n: env[n] if env[n] is SAME else self._full(n, env)
                for n in nodes[:cut] if any(u in later for u in n.users)}

    def _full(self, node, env):
        """A node's occluded value as whole tensors (boxes pasted into the clean activation)."""
        state = env[node]
        clean = self.clean_env[node]
        if state is SAME:
            return clean
        if isinstance(state, Box):
            h, w = clean.shape[-2:]
            zero = torch.zeros_like(state.r)
            return self._read(node, state, (0, 0, 0, 0), zero, zero, h, w)
        return state

    def _step(self, node: fx.Node, env: dict):
        inputs = [a for a in node.all_input_nodes]
        states = [env[a] for a in inputs]
        if all(s is SAME for s in states):
            return SAME
        boxes = [s for s in states if isinstance(s, Box)]
        if boxes and all(isinstance(s, Box) or s is SAME for s in states):
            out = self._step_box(node, env, inputs)
            if out is not None:
                return out
        args = _map(node.args, env, lambda a: self._full(a, env))
        kwargs = _map(node.kwargs, env, lambda a: self._full(a, env))
        return self._call(node, args, kwargs)

    def _step_box(self, node: fx.Node, env: dict, inputs: list):
        """The node on boxes, or None when it must see whole maps."""
        if node.op == "call_module":
            m = self.modules[node.target]
            if len(inputs) != 1 or node.kwargs:
                return None
            state = env[inputs[0]]
            if _pointwise_module(m):
                return Box(state.r, state.c, m(state.values))
            if isinstance(m, nn.Conv2d):
                return self._conv(node, inputs[0], state, m)
            if isinstance(m, nn.MaxPool2d):
                return self._pool(node, inputs[0], state, m)
            return None
        pointwise = (node.op == "call_function" and node.target in _POINTWISE_FUNCTIONS) or (
            node.op == "call_method" and node.target in _POINTWISE_METHODS)
        if pointwise or (node.op == "call_function" and node.target is torch.cat and _cat_channels(node)):
            boxed = [a for a in inputs if isinstance(env[a], Box)]
            if any(not isinstance(self.clean_env[a], torch.Tensor) or self.clean_env[a].dim() != 4 for a in inputs):
                return None
            if any(self.clean_env[a].shape[-2:] != self.clean_env[node].shape[-2:] for a in inputs):
                return None  # broadcasting over space: not pointwise
            r, c, h, w = _union([env[a] for a in boxed], self.clean_env[node].shape[-2:])
            if h * w > FULL_FRACTION * self.clean_env[node].shape[-2:].numel():
                return None
            reads = {a: self._read(a, env[a], (0, 0, 0, 0), r, c, h, w) if env[a] is not SAME
                     else self._crop_clean(a, r, c, h, w) for a in inputs}
            args = _map(node.args, env, lambda a: reads[a])
            kwargs = _map(node.kwargs, env, lambda a: reads[a])
            return Box(r, c, self._call(node, args, kwargs))
        return None

    def _window_op(self, node, src, state, pads, kernel, stride, dilation, fill, compute):
        """Convolution-like node: the output cells whose window meets the input box, computed from
        the input padded exactly as the layer pads it."""
        out_h, out_w = self.clean_env[node].shape[-2:]
        spans = []
        for start, length, pad, k, s, d, n in ((state.r, state.size[0], pads[0], kernel[0], stride[0], dilation[0], out_h),
                                               (state.c, state.size[1], pads[2], kernel[1], stride[1], dilation[1], out_w)):
            lo = torch.div(start + pad - (k - 1) * d + s - 1, s, rounding_mode="floor").clamp(min=0)
            # the most cells a box of this length can reach, whatever its phase: a size that does not
            # change from batch to batch lets oneDNN reuse its prepared convolutions
            size = (length - 1 + (k - 1) * d) // s + 1
            if size >= n:
                return None
            spans.append((lo.clamp(max=n - size), size))
        (r, h), (c, w) = spans
        if h * w > FULL_FRACTION * out_h * out_w:
            return None
        region = self._read(src, state, pads, r * stride[0], c * stride[1],
                            (h - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1,
                            (w - 1) * stride[1] + (kernel[1] - 1) * dilation[1] + 1, fill)
        return Box(r, c, compute(region))

    def _conv(self, node, src, state, m: nn.Conv2d):
        height, width = self.clean_env[src].shape[-2:]
        pads = _conv_pads(m, height, width)
        if pads is None:
            return None
        return self._window_op(node, src, state, pads, m.kernel_size, m.stride, m.dilation, 0.0,
                               lambda region: F.conv2d(region, m.weight, m.bias, m.stride, 0, m.dilation, m.groups))

    def _pool(self, node, src, state, m: nn.MaxPool2d):
        k, s, p, d = (_pair(v) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding, m.dilation))
        if m.return_indices:
            return None
        height, width = self.clean_env[src].shape[-2:]
        out_h, out_w = self.clean_env[node].shape[-2:]
        # ceil_mode's last window may hang past the padding: pad far enough that it never does
        bottom = max((out_h - 1) * s[0] + (k[0] - 1) * d[0] + 1 - height - p[0], 0)
        right = max((out_w - 1) * s[1] + (k[1] - 1) * d[1] + 1 - width - p[1], 0)
        return self._window_op(node, src, state, (p[0], bottom, p[1], right), k, s, d, -math.inf,
                               lambda region: F.max_pool2d(region, k, s, 0, d))

    def _padded(self, node, pads, fill) -> torch.Tensor:
        key = (node, pads, fill)
        if key not in self.padded:
            t, b, l, r = pads
            self.padded[key] = F.pad(self.clean_env[node], (l, r, t, b), value=fill)[0]
        return self.padded[key]

    def _crop_clean(self, node, r, c, h, w):
        return _gather(self.clean_env[node][0], r, c, h, w)

    def _read(self, node, state: Box, pads, r, c, h, w, fill=0.0) -> torch.Tensor:
        """Occluded values of `node` in rows r:r+h, columns c:c+w of its padded map, per copy."""
        out = _gather(self._padded(node, pads, fill), r, c, h, w)
        bh, bw = state.size
        br, bc = state.r + pads[0], state.c + pads[2]
        if _by_index(out.device):
            return _paste(out, state.values, br - r, bc - c)
        # slicing copy by copy: PyTorch's gather by index tensors is several times slower on a CPU
        for b, (r0, c0, br, bc) in enumerate(zip(r.tolist(), c.tolist(), br.tolist(), bc.tolist())):
            top, bottom = max(r0, br), min(r0 + h, br + bh)
            left, right = max(c0, bc), min(c0 + w, bc + bw)
            if top < bottom and left < right:
                out[b, :, top - r0:bottom - r0, left - c0:right - c0] = \
                    state.values[b, :, top - br:bottom - br, left - bc:right - bc]
        return out


def _by_index(device: torch.device) -> bool:
    """Whether crops are read with index tensors, a few launches per layer whatever the batch (on
    a GPU), or by slicing copy by copy (on a CPU, where that is several times faster)."""
    return device.type != "cpu"


def _gather(t: torch.Tensor, r, c, h, w) -> torch.Tensor:
    """Crops t[:, r[b]:r[b]+h, c[b]:c[b]+w] of a [C,H,W] tensor, stacked as [B,C,h,w]; r and c
    are CPU tensors (the geometry stays on the CPU, so that it never waits for a GPU)."""
    if not _by_index(t.device):
        return torch.stack([t[:, i:i + h, j:j + w] for i, j in zip(r.tolist(), c.tolist())])
    rows, cols = (_on(v[:, None] + torch.arange(n), t.device) for v, n in ((r, h), (c, w)))
    channels = torch.arange(t.shape[0], device=t.device)
    return t[channels[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]


def _paste(out: torch.Tensor, values: torch.Tensor, dr: torch.Tensor, dc: torch.Tensor) -> torch.Tensor:
    """out [B,C,h,w] with values [B,C,bh,bw] laid over it, copy b's box starting dr[b] rows and
    dc[b] columns from out's corner (CPU tensors; negative where the box starts before out)."""
    (bh, bw), (h, w) = values.shape[-2:], out.shape[-2:]
    i, j = dr.neg()[:, None] + torch.arange(h), dc.neg()[:, None] + torch.arange(w)  # box-relative
    inside = ((i >= 0) & (i < bh))[:, None, :, None] & ((j >= 0) & (j < bw))[:, None, None, :]
    copies = torch.arange(len(values))[:, None, None, None]
    channels = torch.arange(values.shape[1])[None, :, None, None]
    i, j = i.clamp(0, bh - 1)[:, None, :, None], j.clamp(0, bw - 1)[:, None, None, :]
    device = out.device
    laid = values[_on(copies, device), _on(channels, device), _on(i, device), _on(j, device)]
    return torch.where(_on(inside, device), laid, out)


def _on(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    # non_blocking: a copy from pageable memory is staged at once, without waiting for the GPU's queue
    return t.to(device, non_blocking=True)


def _union(boxes: list[Box], shape) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """One box size that covers every input box of each copy, placed inside the map."""
    spans = []
    for axis, n in enumerate(shape):
        lo = torch.stack([b.r if axis == 0 else b.c for b in boxes]).min(0).values
        hi = torch.stack([(b.r if axis == 0 else b.c) + b.size[axis] for b in boxes]).max(0).values
        size = min(int((hi - lo).max()), n)
        spans.append((lo.clamp(max=n - size), size))
    (r, h), (c, w) = spans
    return r, c, h, w


def _cat_channels(node: fx.Node) -> bool:
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    return dim == 1


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _map(a, env, fn=None):
    fn = fn or (lambda n: env[n])
    return fx.node.map_arg(a, fn)


_executors: "weakref.WeakKeyDictionary[nn.Module, _Executor | None]" = weakref.WeakKeyDictionary()


def _executor(model: Model) -> _Executor | None:
    """The incremental executor of a network (built once), or None when torch.fx cannot trace it."""
    # Built under the device's queue: copying a network while another session hooks it would copy the hooks.
    net = model.net
    with device_lock(model.device):
        if net in _executors:
            return _executors[net]
        try:
            _executors[net] = _Executor(net)
        except Exception:  # tracing fails on data-dependent control flow; plain runs still work
            _executors[net] = None
        return _executors[net]


# ---------------------------------------------------------------- the score drops

def _batch_size(model: Model, x: torch.Tensor, batch_size: int | None) -> int:
    if batch_size:
        return batch_size
    if model.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(model.device)
        # a forward pass keeps a few dozen maps the size of the input's first activations
        return int(max(16, min(1024, free // (x[0].numel() * 4 * 400))))
    # On a CPU small batches win: the changed boxes of 8 windows stay in cache, while at 32 and
    # more the early, high-resolution layers spill (lite0, 224 px, 2 cores: 8 -> 3.1-3.9 s,
    # 32 -> 5.5 s, 128 -> 11.1 s).
    return 8


class _Race:
    """Which way of computing the same score drops, incremental or plain, runs a kind of job faster
    on this network and device: each way is tried `TRIES` times (the first run of either may carry
    one-off costs), then the faster kept. Why race: on a GPU the answer depends on the card and the
    network (lite0 on an H100: plain 0.12 s, incremental 0.43 s while it still read its boxes copy
    by copy), and trying costs nothing, since either way gives the same map."""
    TRIES = 2

    def __init__(self):
        self.seconds: dict = {}  # kind of job -> {incremental?: [seconds of each run]}

    def pick(self, kind) -> bool:
        runs = self.seconds.get(kind, {})
        least = min((False, True), key=lambda way: len(runs.get(way, [])))
        if len(runs.get(least, [])) < self.TRIES:
            return least
        return min(runs[True]) < min(runs[False])

    def record(self, kind, incremental: bool, seconds: float) -> None:
        self.seconds.setdefault(kind, {}).setdefault(incremental, []).append(seconds)


_races: "weakref.WeakKeyDictionary[nn.Module, _Race]" = weakref.WeakKeyDictionary()


def _drops(model: Model, x: torch.Tensor, target: int, starts: list[tuple[int, int]], window: int, fill,
           out: torch.Tensor, batch_size: int, after_batch: Callable[[int], object] | None = None,
           incremental: bool | None = None) -> bool:
    """Writes clean score - occluded score for each window start into `out` (x on the model's
    device). after_batch(number done) may return False to stop; returns whether all were done.
    Incremental on a CPU; elsewhere whichever way `_Race` finds faster."""
    race, kind = _races.setdefault(model.net, _Race()), (tuple(x.shape), window, len(starts), batch_size)
    if incremental is None:
        incremental = model.device.type == "cpu" or race.pick(kind)
    shared = _executor(model) if incremental else None
    started = time.perf_counter()  # wall time: the last batch's scores are read back, so the GPU has finished
    finished = _run_drops(model, x, target, starts, window, fill, out, batch_size, after_batch,
                          copy.copy(shared) if shared else None)
    if finished and model.device.type != "cpu":
        race.record(kind, shared is not None, time.perf_counter() - started)
    return finished


def _run_drops(model: Model, x: torch.Tensor, target: int, starts: list[tuple[int, int]], window: int, fill,
               out: torch.Tensor, batch_size: int, after_batch, engine: _Executor | None) -> bool:
    """`_drops` one way: with `engine`, a shallow copy of the incremental executor, or plainly."""
    _, _, height, width = x.shape
    # The device is taken per batch, not for the whole map, so other sessions' short jobs go
    # between batches; the clean activations live in this job's own shallow copy of the engine.

    def boxes(chunk):
        # each window as a fixed-size box kept inside the picture; hanging windows are clipped
        a, b = (torch.tensor(v) for v in zip(*chunk))
        r, c = a.clamp(max=height - window), b.clamp(max=width - window)
        filled = _paste(torch.zeros(len(chunk), 1, window, window, device=x.device),
                        torch.ones(len(chunk), 1, window, window, device=x.device), a - r, b - c)
        return r, c, torch.where(filled.bool(), fill, _gather(x[0], r, c, window, window))

    with torch.inference_mode():
        with device_lock(model.device):
            clean = engine.clean(x) if engine else model.net(x)
        clean_score = float(clean[0, target])
        if engine is None:
            for first in range(0, len(starts), batch_size):
                chunk = starts[first:first + batch_size]
                batch = _occluded_copies(x, chunk, window, fill)
                with device_lock(model.device):
                    out[first:first + len(chunk)] = clean_score - model.net(batch)[:, target].double().cpu()
                if after_batch is not None and after_batch(first + len(chunk)) is False:
                    return first + len(chunk) == len(starts)
            return True
        # Small batches through the early layers, where the boxes are and the maps are large (they
        # stay in cache); then, from the cut on, the copies of several batches as one large batch:
        # the late layers' whole small maps run faster that way.
        with device_lock(model.device):
            geometry = (tuple(x.shape), window, starts[0])
            if geometry not in engine.cuts:
                engine.cuts[geometry] = engine.cut(Box(*boxes(starts[:1])))
        cut = engine.cuts[geometry]
        tail_batch = max(batch_size, TAIL_BATCH)
        pending, first = [], 0
        for head_first in range(0, len(starts), batch_size):
            chunk = starts[head_first:head_first + batch_size]
            with device_lock(model.device):
                pending.append(engine.live(engine.head(Box(*boxes(chunk)), cut), cut))
            done = head_first + len(chunk)
            if done - first < tail_batch and done < len(starts):
                continue
            env = {n: v if v is SAME else torch.cat([p[n] for p in pending]) for n, v in pending[0].items()}
            with device_lock(model.device):
                scores = engine.tail(env, cut)[:, target]
            out[first:done] = clean_score - scores.double().cpu()
            pending, first = [], done
            if after_batch is not None and after_batch(done) is False:
                return done == len(starts)
    return True


def _occluded_copies(x: torch.Tensor, starts: list[tuple[int, int]], window: int, fill) -> torch.Tensor:
    """A copy of x [1,C,H,W] per window start with the window (clipped to the picture) filled: one
    masked `where`, not a copy per window, which on a GPU would be hundreds of tiny launches."""
    _, _, height, width = x.shape
    r, c = (torch.tensor(v, device=x.device)[:, None] for v in zip(*starts))
    rows, cols = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
    inside = ((rows >= r) & (rows < r + window))[:, :, None] & ((cols >= c) & (cols < c + window))[:, None, :]
    return torch.where(inside[:, None], fill, x)


def _check(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"Occlusion explains one picture: expected a batch [1,3,H,W], got {tuple(x.shape)}.")


def _report(progress: Progress | None, offset: int, total: int, show: Callable[[], torch.Tensor]):
    """An after_batch that calls progress(step, total, preview=the map so far as a heat map)."""
    if progress is None:
        return None
    return lambda done: progress(offset + done, total, preview=render.colorize(show(), cmap="RdBu_r"))


@falls_back
def occlusion(model: Model, x: torch.Tensor, target: int, window: int = 16, stride: int = 8,
              baseline=0.0, progress: Progress | None = None, batch_size: int | None = None) -> torch.Tensor:
    """The occlusion map [H,W] (CPU, float32) of class `target` for a preprocessed batch of one.

    progress(step, total, preview=heat map so far) is called after each batch; returning False
    stops early, and the map then averages the windows evaluated so far.
    """
    _check(x)
    rows, cols = positions(x.shape[2], window, stride), positions(x.shape[3], window, stride)
    x = x.to(model.device, torch.float32)
    grid = torch.full((len(rows), len(cols)), math.nan, dtype=torch.float64)
    show = lambda: _assemble(grid, rows, cols, window, x.shape[2:])  # noqa: E731
    _drops(model, x, target, [(r, c) for r in rows for c in cols], window, _fill(x, baseline), grid.view(-1),
           _batch_size(model, x, batch_size), _report(progress, 0, grid.numel(), show))
    return show()


def occlusion_preview(model: Model, x: torch.Tensor, target: int, window: int = 16, stride: int = 8,
                      baseline=0.0, progress: Progress | None = None,
                      refine: float = 0.2) -> tuple[torch.Tensor, dict]:
    """A quick approximation of `occlusion`'s map, and {"evaluations", "of", "correlation"}.

    Evaluates the windows of a coarse grid (about one window apart), fills in the others'
    score drops by bilinear interpolation, then evaluates exactly the `refine` share of the rest
    where the coarse drops around them differ most (the edges of what matters). "correlation"
    is the Pearson correlation with the exact map when known (1.0 when every window was
    evaluated), else None; bench/occlusion.py measures it.
    """
    _check(x)
    rows, cols = positions(x.shape[2], window, stride), positions(x.shape[3], window, stride)
    x = x.to(model.device, torch.float32)
    fill, size = _fill(x, baseline), _batch_size(model, x, None)
    every = max(1, window // stride)
    coarse_r = sorted(set(range(0, len(rows), every)) | {len(rows) - 1})
    coarse_c = sorted(set(range(0, len(cols), every)) | {len(cols) - 1})
    grid = torch.full((len(rows), len(cols)), math.nan, dtype=torch.float64)
    coarse = torch.full((len(coarse_r), len(coarse_c)), math.nan, dtype=torch.float64)
    n_refine = int(round(refine * (grid.numel() - coarse.numel())))
    total = coarse.numel() + n_refine
    show = lambda: _assemble(grid, rows, cols, window, x.shape[2:])  # noqa: E731

    def place_coarse():
        grid[torch.tensor(coarse_r)[:, None], torch.tensor(coarse_c)[None, :]] = coarse
    report = _report(progress, 0, total, show)
    finished = _drops(model, x, target, [(rows[i], cols[j]) for i in coarse_r for j in coarse_c], window, fill,
                      coarse.view(-1), size, report and (lambda done: (place_coarse(), report(done))[1]))
    place_coarse()
    if not finished or coarse.numel() == grid.numel():
        return show(), _info(grid, coarse.numel() == grid.numel())

    grid[:] = torch.from_numpy(_interpolate(coarse.numpy(), coarse_r, coarse_c, len(rows), len(cols)))
    ranking = torch.from_numpy(_spread(coarse.numpy(), coarse_r, coarse_c, len(rows), len(cols)))
    ranking[torch.tensor(coarse_r)[:, None], torch.tensor(coarse_c)[None, :]] = -math.inf
    chosen = ranking.view(-1).argsort(descending=True)[:n_refine]
    exact = grid.view(-1)[chosen].clone()
    starts = [(rows[i // len(cols)], cols[i % len(cols)]) for i in chosen.tolist()]
    report = _report(progress, coarse.numel(), total, show)

    def place_exact():
        grid.view(-1)[chosen] = exact
    _drops(model, x, target, starts, window, fill, exact, size,
           report and (lambda done: (place_exact(), report(done))[1]))
    place_exact()
    return show(), _info(grid, False, coarse.numel() + n_refine)


def _info(grid: torch.Tensor, exact: bool, evaluations: int | None = None) -> dict:
    return {"evaluations": evaluations if evaluations is not None else int((~grid.isnan()).sum()),
            "of": grid.numel(), "correlation": 1.0 if exact else None}


def _interpolate(coarse: np.ndarray, at_r: list[int], at_c: list[int], n_r: int, n_c: int) -> np.ndarray:
    """Bilinear interpolation of values known at rows at_r x columns at_c onto the n_r x n_c grid."""
    along_c = np.stack([np.interp(np.arange(n_c), at_c, row) for row in coarse])
    return np.stack([np.interp(np.arange(n_r), at_r, col) for col in along_c.T], axis=1)


def _spread(coarse: np.ndarray, at_r: list[int], at_c: list[int], n_r: int, n_c: int) -> np.ndarray:
    """For each grid point, max - min of the coarse values at the corners of its coarse cell."""
    padded_r, padded_c = max(len(at_r) - 1, 1), max(len(at_c) - 1, 1)
    cells = np.zeros((padded_r, padded_c))
    for i in range(padded_r):
        for j in range(padded_c):
            corners = coarse[i:i + 2, j:j + 2]
            cells[i, j] = corners.max() - corners.min()
    cell_r = np.clip(np.searchsorted(at_r, np.arange(n_r), side="right") - 1, 0, padded_r - 1)
    cell_c = np.clip(np.searchsorted(at_c, np.arange(n_c), side="right") - 1, 0, padded_c - 1)
    return cells[cell_r[:, None], cell_c[None, :]]
