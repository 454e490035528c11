"""The incremental executor of occlusion (after Nakandala et al., SIGMOD 2019, "Incremental and
approximate inference for faster occlusion-based CNN explanations").

A window changes only the cells of each layer whose receptive field meets it, so we keep the clean
picture's activations and, layer by layer, recompute only the changed box of each occluded copy,
batching the copies; once a box covers most of its map the rest of the network runs on whole maps,
batched. No library does this, hence this hand-written executor; it walks a torch.fx graph of a
private copy of the network, so it needs no per-architecture code. `executor_of` gives None for
networks torch.fx cannot trace; `perturbation` then runs plain batched copies. Its boxes are
read and pasted by `boxes`.
"""
from __future__ import annotations

import copy
from collections import Counter
import math
import operator
import weakref

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from vislib.attribution import boxes
from vislib.attribution.boxes import Box, gather
from vislib.models import Model

_POINTWISE_MODULES = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid,
                      nn.GELU, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.Identity, nn.Dropout)
_POINTWISE_FUNCTIONS = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul,
                        torch.relu, F.relu, F.relu6, F.hardtanh, F.silu, F.hardswish, F.hardsigmoid, F.gelu,
                        torch.sigmoid, F.sigmoid, torch.tanh}
_POINTWISE_METHODS = {"relu", "sigmoid", "add", "mul", "contiguous", "clone"}
FULL_FRACTION = 0.7  # a box larger than this share of its map costs more to gather than it saves


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
        the copies gain nothing from boxes, and run faster as one large batch (in `perturbation`)."""
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
        if any(isinstance(s, Box) for s in states) and all(isinstance(s, Box) or s is SAME for s in states):
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
        axes = ((state.r, state.size[0], pads[0], kernel[0], stride[0], dilation[0], out_h),
                (state.c, state.size[1], pads[2], kernel[1], stride[1], dilation[1], out_w))
        for start, length, pad, k, s, d, n in axes:
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
        return boxes.paste(out, Box(state.r + pads[0], state.c + pads[2], state.values), r, c)


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
    with model.running() as net:
        if net in _executors:
            return _executors[net]
        try:
            _executors[net] = Executor(net)
        except Exception:  # tracing fails on data-dependent control flow; plain runs still work
            _executors[net] = None
        return _executors[net]
