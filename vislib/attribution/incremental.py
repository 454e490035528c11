"""The incremental executor of occlusion (after Nakandala et al., SIGMOD 2019, "Incremental and
approximate inference for faster occlusion-based CNN explanations").

A window changes only the cells of each layer whose receptive field meets it, so we keep the clean
picture's activations and, layer by layer, recompute only the changed box of each occluded copy,
batching the copies; once a box covers most of its map the rest of the network runs on whole maps,
batched. No library does this, hence this hand-written executor; it walks a torch.fx graph of a
private copy of the network, so it needs no per-architecture code. `executor_of` gives None for
networks torch.fx cannot trace; `vislib.occlusion` then runs plain batched copies.

On a CPU the executor slices its boxes copy by copy; on a GPU it reads them with index tensors, a
few launches per layer whatever the batch (`by_index`).
"""
from __future__ import annotations

import copy
from collections import Counter
import math
import operator
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from vislib.runtime import device_lock
from vislib.models.zoo import Model

_POINTWISE_MODULES = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid,
                      nn.GELU, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.Identity, nn.Dropout)
_POINTWISE_FUNCTIONS = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul,
                        torch.relu, F.relu, F.relu6, F.hardtanh, F.silu, F.hardswish, F.hardsigmoid, F.gelu,
                        torch.sigmoid, F.sigmoid, torch.tanh}
_POINTWISE_METHODS = {"relu", "sigmoid", "add", "mul", "contiguous", "clone"}
FULL_FRACTION = 0.7  # a box larger than this share of its map costs more to gather than it saves


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


class Executor:
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
        the copies gain nothing from boxes, and run faster as one large batch (in `vislib.occlusion`)."""
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
        return gather(self.clean_env[node][0], r, c, h, w)

    def _read(self, node, state: Box, pads, r, c, h, w, fill=0.0) -> torch.Tensor:
        """Occluded values of `node` in rows r:r+h, columns c:c+w of its padded map, per copy."""
        out = gather(self._padded(node, pads, fill), r, c, h, w)
        bh, bw = state.size
        br, bc = state.r + pads[0], state.c + pads[2]
        if by_index(out.device):
            return _paste(out, state.values, br - r, bc - c)
        # slicing copy by copy: PyTorch's gather by index tensors is several times slower on a CPU
        for b, (r0, c0, br, bc) in enumerate(zip(r.tolist(), c.tolist(), br.tolist(), bc.tolist())):
            top, bottom = max(r0, br), min(r0 + h, br + bh)
            left, right = max(c0, bc), min(c0 + w, bc + bw)
            if top < bottom and left < right:
                out[b, :, top - r0:bottom - r0, left - c0:right - c0] = \
                    state.values[b, :, top - br:bottom - br, left - bc:right - bc]
        return out


def by_index(device: torch.device) -> bool:
    """Whether crops are read with index tensors, a few launches per layer whatever the batch (on
    a GPU), or by slicing copy by copy (on a CPU, where that is several times faster)."""
    return device.type != "cpu"


def gather(t: torch.Tensor, r, c, h, w) -> torch.Tensor:
    """Crops t[:, r[b]:r[b]+h, c[b]:c[b]+w] of a [C,H,W] tensor, stacked as [B,C,h,w]; r and c
    are CPU tensors (the geometry stays on the CPU, so that it never waits for a GPU)."""
    if not by_index(t.device):
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
    copies = torch.arange(len(values), device=out.device)[:, None, None, None]
    channels = torch.arange(values.shape[1], device=out.device)[None, :, None, None]
    i, j = i.clamp(0, bh - 1)[:, None, :, None], j.clamp(0, bw - 1)[:, None, None, :]
    laid = values[copies, channels, _on(i, out.device), _on(j, out.device)]
    return torch.where(_on(inside, out.device), laid, out)


def _on(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor (indices, masks) on `device`, without waiting for the GPU's queue."""
    if device.type != "cuda":
        return t.to(device)
    # A plain copy from pageable memory waits for every kernel queued before it. From pinned memory
    # with non_blocking it does not, and PyTorch's pinned-memory cache keeps the source until the
    # copy has run.
    return t.pin_memory().to(device, non_blocking=True)


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


_executors: "weakref.WeakKeyDictionary[nn.Module, Executor | None]" = weakref.WeakKeyDictionary()


def executor_of(model: Model) -> Executor | None:
    """The incremental executor of a network (built once), or None when torch.fx cannot trace it."""
    # Built under the device's queue: copying a network while another session hooks it would copy the hooks.
    net = model.net
    with device_lock(model.device):
        if net in _executors:
            return _executors[net]
        try:
            _executors[net] = Executor(net)
        except Exception:  # tracing fails on data-dependent control flow; plain runs still work
            _executors[net] = None
        return _executors[net]
