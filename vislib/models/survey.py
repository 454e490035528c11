"""Finding a network's layer catalogue, first convolution and classifier by watching one forward pass.

For a network no library describes (an exported file, a wrapped module) nothing but the modules
themselves says where its stages are, and torchvision publishes no stage list at all
(`feature_extraction`'s node names are fx operations, finer than blocks and including the
functional sums between them), so we walk the modules here. timm's `feature_info` names only
each stage's LAST module - too coarse for a unit page - and not always a module the classifier
has (timm's HRNet lists `stem` and `stage1`, which exist only in its feature-extraction form);
tests/test_zoo.py checks the found catalogue against it where it does: every stage it names ends
at a found entry with the stride it states.

One pass on the meta device (shapes only, no arithmetic, no copy of the weights) records, for
every module, when it was called, which tensors went in and which came out. The catalogue is
then read off the module tree:
- a *pure container* (its first child takes its input, each child takes the previous child's
  output and its last child's output is its output: `nn.Sequential`, a stage of blocks, the
  root) is opened and its children are looked at in call order;
- anything else that computes (a residual block, an Inception module, a fire module) is one
  entry, a "block", when it contains a convolution;
- runs of single layers are grouped the way a person reads them: a convolution with the norm
  and activation after it is one entry (named by its last module: the activation's output is
  what the next stage sees), a pooling layer is one entry.
Only outputs laid out [N, C, H, W] with H x W > 1 count: a global pool, a transformer's tokens
or a channels-last [N, H, W, C] stage is not a place to hook a map.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call
from torch.utils._python_dispatch import TorchDispatchMode

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)


@dataclass
class _Call:
    order: int                      # when the module's forward started (pre-hook order)
    inputs: tuple[int, ...]         # ids of the tensors it was given
    output: int | None = None       # id of the tensor it returned
    shape: tuple[int, ...] | None = None
    done: int = -1                  # when it returned
    own_ops: int = 0                # operations it ran itself, outside its children
    changed_later: bool = False     # its output was overwritten in place after it returned


# Operations that move no number: a container that runs only these between its children still
# only passes a tensor through.
_NO_OPS = {"detach", "alias", "view", "_unsafe_view", "reshape", "flatten", "contiguous", "clone"}


class _OwnOps(TorchDispatchMode):
    """Counts each operation against the innermost module running it (the hooks keep `stack`), and
    notes when each tensor was last written in place (`written`: id -> the clock then)."""

    def __init__(self, calls: dict, stack: list, clock: list, written: dict):
        super().__init__()
        self.calls, self.stack, self.clock, self.written = calls, stack, clock, written

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.stack and func.__name__.split(".")[0] not in _NO_OPS:
            self.calls[self.stack[-1]].own_ops += 1
        if func._schema.is_mutable:
            for arg, value in zip(func._schema.arguments, args):
                if arg.alias_info is not None and arg.alias_info.is_write and isinstance(value, torch.Tensor):
                    self.written[id(value)] = self.clock[0]
        return func(*args, **(kwargs or {}))


@dataclass(frozen=True)
class Survey:
    catalogue: list[tuple[str, str]] = field(default_factory=list)  # (module name, kind) in forward order
    first_conv: str = ""        # module name of the first convolution ("" if none)
    classifier: str = ""        # state-dict key of the logits layer's weight ("" if none found)
    num_classes: int = 0        # the width of the network's output
    output_shape: tuple[int, ...] = ()


def _is_conv(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) or getattr(m, "_vislib_kind", None) == "conv"


def _is_pool(m: nn.Module) -> bool:
    return isinstance(m, _POOLS) or getattr(m, "_vislib_kind", None) == "pool"


def _spatial(shape) -> bool:
    """[N, C, H, W] with a map worth hooking. A square input keeps H == W in NCHW; a channels-last
    [N, H, W, C] tensor has its equal pair one place earlier (Swin's stages, ConvNeXt's inner MLP)."""
    if shape is None or len(shape) != 4 or shape[2] * shape[3] <= 1:
        return False
    return not (shape[1] == shape[2] and shape[2] != shape[3])


def _record(net: nn.Module, x: torch.Tensor, params: dict | None) -> tuple[dict[str, _Call], torch.Tensor]:
    calls: dict[str, _Call] = {}
    alive: list = []  # keeps every tensor seen alive, so that an id() is never reused within the pass
    clock = [0]
    stack: list[str] = []
    written: dict[int, int] = {}

    def ids(args) -> tuple[int, ...]:
        out = []
        for a in args:
            if isinstance(a, torch.Tensor):
                out.append(id(a))
                alive.append(a)
            elif isinstance(a, (list, tuple)):
                out.extend(ids(a))
        return tuple(out)

    def pre(name):
        def run(_m, args):
            if name not in calls:  # a module called twice keeps its first call
                clock[0] += 1
                calls[name] = _Call(clock[0], ids(args))
            stack.append(name)
        return run

    def post(name):
        def run(_m, _args, out):
            if stack and stack[-1] == name:
                stack.pop()
            c = calls.get(name)
            if c is None or c.done >= 0:
                return
            clock[0] += 1
            c.done = clock[0]
            if isinstance(out, torch.Tensor):
                alive.append(out)
                c.output, c.shape = id(out), tuple(out.shape)
        return run

    handles = []
    for name, m in net.named_modules():
        if name:
            handles += [m.register_forward_pre_hook(pre(name)), m.register_forward_hook(post(name))]
    try:
        with torch.no_grad(), _OwnOps(calls, stack, clock, written):
            out = functional_call(net, params, (x,)) if params is not None else net(x)
    finally:
        for h in handles:
            h.remove()
    for c in calls.values():  # a write inside the module itself comes before its post hook ticks
        c.changed_later = c.output in written and written[c.output] >= c.done
    return calls, out


def _opens(m: nn.Module, call: _Call, kids: list[str], calls: dict[str, _Call], modules: dict) -> bool:
    """Whether the walk looks inside a module: it only passes a tensor through its children, one
    after another (no sum, no concatenation of its own - in-place ones included, which ids alone
    would miss), and it is a stage rather than a block: a plain Sequential, or a module whose
    children are all composite (a stage of blocks). A custom module holding single convolutions
    and running them in a chain is a block of the person's own design, and stays one."""
    chain = [k for k in kids if _spatial(calls[k].shape)]
    if len(chain) < 2 or call.own_ops or len(chain) != len(kids):
        return False
    if not set(calls[chain[0]].inputs) & set(call.inputs) or calls[chain[-1]].output != call.output:
        return False
    if not all(calls[a].output in calls[b].inputs for a, b in zip(chain, chain[1:])):
        return False
    return type(m).forward is nn.Sequential.forward or not any(_is_conv(modules[k]) for k in kids)


def _walk(modules: dict[str, nn.Module], calls: dict[str, _Call]) -> list[tuple[str, str]]:
    def parent(name: str) -> str:
        return name.rsplit(".", 1)[0] if "." in name else ""

    children: dict[str, list[str]] = {}
    for name in calls:  # a ModuleList is never called: its items belong to the module that calls them
        above = parent(name)
        while above and above not in calls:
            above = parent(above)
        children.setdefault(above, []).append(name)
    for kids in children.values():
        kids.sort(key=lambda k: calls[k].order)

    def contains_conv(name: str) -> bool:
        return any(_is_conv(m) for m in modules[name].modules())

    def pieces(name: str) -> list[tuple[str, str]]:
        """(module, role) in call order: role is conv, pool, block or follow (norm, activation...)."""
        kids = children.get(name, [])
        call, m = calls.get(name), modules[name]
        if name == "" or _opens(m, call, kids, calls, modules):
            return [p for k in kids for p in pieces(k)]
        if not _spatial(call.shape):
            return [(name, "skip")]
        if _is_conv(m):
            return [(name, "conv")]
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            # A head's adaptive pool resamples whatever map comes in to one fixed size (VGG's and
            # AlexNet's avgpool: 7 x 7 from 7 x 7 at 224 pixels, from 1 x 1 at 32). It is no stage:
            # at the surveyed size it changes nothing, at any other it makes a map no layer before
            # had (Grad-CAM there is a stretched copy of the last map), which measure() cannot place.
            return [(name, "skip")]
        if _is_pool(m):
            return [(name, "pool")]
        if kids and contains_conv(name):
            return [(name, "block")]
        if not kids and not call.own_ops:
            return [(name, "skip")]  # an Identity: the tensor it returns is the one it was given
        return [(name, "follow")]  # a norm, an activation, dropout, a sum: continues a convolution

    out: list[tuple[str, str]] = []
    unit: str | None = None  # the current convolution unit's latest module
    ended = False  # whether the latest piece was a block or pool that out[-1] holds
    for name, role in pieces(""):
        if role == "skip":
            continue
        # A follow names the entry only if its output is not overwritten in place after it
        # returned (torchvision's DenseNet runs F.relu(features, inplace=True) on norm5's output):
        # a hook there would see the overwritten values and gradients of another tensor, so
        # Grad-CAM there differed from pytorch-grad-cam's by 17 %.
        if role == "follow" and unit is not None:
            unit = unit if calls[name].changed_later else name
            continue
        if role == "follow" and ended and parent(out[-1][0]) == parent(name):
            # A norm (and activation) after a block, beside it in the same stage, is what the
            # next stage sees, as for a convolution: timm's DenseNet's features.norm5 after
            # denseblock4 (where pytorch-grad-cam's README puts Grad-CAM), DPN's conv5_bn_ac. One
            # in another module (ConvNeXt's downsample norm) belongs to what follows.
            if not calls[name].changed_later:
                out[-1] = (name, out[-1][1])
            continue
        ended = role in ("pool", "block")
        if unit is not None:
            out.append((unit, "conv"))
            unit = None
        if role == "conv":
            unit = name
        elif role in ("pool", "block"):
            out.append((name, role))
    if unit is not None:
        out.append((unit, "conv"))
    return out


def _classifier(modules: dict[str, nn.Module], calls: dict[str, _Call], out_shape) -> str:
    """The state-dict key of the weight of the layer that makes the logits: the last layer called
    whose weight has one row per class and whose output is [N, classes] (or a 1x1 convolution's map)."""
    if len(out_shape) != 2:
        return ""
    k = out_shape[1]
    best = ""
    for name, c in sorted(calls.items(), key=lambda item: item[1].done):
        w = getattr(modules[name], "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() in (2, 4) and w.shape[0] == k and c.shape and c.shape[1] == k \
                and f"{name}.weight" in dict(modules[name].named_parameters(prefix=name)):
            best = f"{name}.weight"
    return best


def _first_conv(modules: dict[str, nn.Module], calls: dict[str, _Call]) -> str:
    convs = [n for n in calls if _is_conv(modules[n])]
    return min(convs, key=lambda n: calls[n].order) if convs else ""


def survey(net: nn.Module, input_size: int, in_channels: int = 3, device=None) -> Survey:
    """The catalogue, first convolution and classifier of `net`, found from one forward pass.

    The pass runs on the meta device with the module's own parameters swapped for shape-only
    stand-ins (torch.func.functional_call: nothing is copied, the module is untouched); a module
    that cannot run on meta (a tensor attribute that is neither parameter nor buffer, an op
    without a meta kernel) gets one real pass at its input size instead."""
    try:
        params = {k: torch.empty_like(v, device="meta")
                  for k, v in [*net.named_parameters(), *net.named_buffers()]}
        x = torch.zeros(1, in_channels, input_size, input_size, device="meta")
        calls, out = _record(net, x, params)
    except Exception:  # any op the meta device lacks: run it for real (slower, same answer)
        device = device or next((p.device for p in net.parameters()), torch.device("cpu"))
        x = torch.zeros(1, in_channels, input_size, input_size, device=device)
        calls, out = _record(net, x, None)
    if not isinstance(out, torch.Tensor):
        return Survey(output_shape=())
    modules = dict(net.named_modules())
    shape = tuple(out.shape)
    return Survey(_walk(modules, calls), _first_conv(modules, calls), _classifier(modules, calls, shape),
                  shape[1] if len(shape) == 2 else 0, shape)
