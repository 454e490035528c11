"""A network's anatomy: for every layer its output shape, parameters, multiply-adds, stride and
receptive field, from one forward pass that computes nothing.

The pass runs on a twin of the network whose weights live on PyTorch's "meta" device: shapes
flow through every operation but no arithmetic is done, so VGG19 takes milliseconds instead of a
second, and the shared network is neither copied nor touched (the twin is made with deepcopy's
memo pointing every weight at an empty meta tensor). Hooks on the twin's modules record what
each layer gives out; they live for this call only.

Multiply-adds (MACs) are counted for convolutions and linear layers from their shapes, the same
rule as `torch.utils.flop_counter` (which counts a multiply-add as two FLOPs and leaves biases,
normalisation, activations and pooling out): a convolution does (C_in / groups) x k_h x k_w MACs
per output value, a linear layer in_features per output value.

Stride and receptive field are composed along the path with the textbook recurrence
(`vislib.models.layers`, Araujo et al., Distill 2019). A tensor made by functional code between
modules - a residual sum, a concatenation of inception branches - takes the largest receptive
field seen so far at its resolution, which is what a sum or concatenation of branches sees. A
module called twice in one pass (torchvision's ResNet blocks apply one ReLU before and after the
sum) is one row: its MACs summed over the calls, its shape and geometry those of its last call.
After a global pooling or a flatten a value depends on the whole picture: stride and receptive
field are then None.
"""
from __future__ import annotations

import copy
import math
import threading
from collections import OrderedDict

import torch
from torch import nn

from vislib.models.layers import (  # one recurrence for the catalogue and us
    _WINDOWED,
    _Geometry,
    _Tracker,
    _window_geometry,
)
from vislib.models.model import Model, fingerprint

_CACHE: OrderedDict[tuple[str, int], list[dict]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 32

_KINDS = [  # (module types, kind); the first match wins
    ((nn.Conv2d,), "conv"), ((nn.ConvTranspose2d,), "transposed conv"), ((nn.Linear,), "linear"),
    ((nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm), "norm"),
    ((nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "pool"),
    ((nn.Dropout, nn.Dropout2d), "dropout"),
    ((nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.GELU, nn.Tanh), "activation"),
    ((nn.Flatten, nn.Identity), "reshape"),
]


def kind_of(module: nn.Module) -> str:
    """A short word for what a layer does; a 3 x 3 convolution with one filter per channel is
    'depthwise conv', a 1 x 1 one 'pointwise conv' (the MobileNet / EfficientNet vocabulary)."""
    for types, kind in _KINDS:
        if isinstance(module, types):
            if kind == "conv" and module.groups > 1 and module.groups == module.in_channels:
                return "depthwise conv"
            if kind == "conv" and tuple(module.kernel_size) == (1, 1):
                return "pointwise conv"
            return kind
    return type(module).__name__.lower()


def macs_of(module: nn.Module, inputs: torch.Tensor | None, output: torch.Tensor) -> int:
    """Multiply-adds of one call for one picture (batch 1), from the shapes alone."""
    values = output[0].numel() if output.dim() > 1 else output.numel()
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        return values * (module.in_channels // module.groups) * k_h * k_w
    if isinstance(module, nn.ConvTranspose2d) and inputs is not None:  # each input value spreads over k x k
        k_h, k_w = module.kernel_size
        return inputs[0].numel() * (module.out_channels // module.groups) * k_h * k_w
    if isinstance(module, nn.Linear):
        return values * module.in_features
    return 0


def _meta_twin(net: nn.Module) -> nn.Module:
    """The network's structure with every weight an empty meta tensor (no data copied)."""
    memo: dict[int, object] = {}
    for t in [*net.parameters(), *net.buffers()]:
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, requires_grad=False) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(net, memo)


def _is_layer(module: nn.Module) -> bool:
    """A row of the table: a leaf module, or a container holding weights of its own."""
    return next(module.children(), None) is None or next(module.parameters(recurse=False), None) is not None


def _trace(net: nn.Module, input_size: int, device) -> list[dict]:
    tracker = _Tracker()  # the layer catalogue's own bookkeeping: the same geometry, to the same rules
    record, known = tracker.record, tracker.known
    rows: dict[str, dict] = {}

    def hook(name: str, module: nn.Module, is_layer: bool):
        def run(_m, inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            g_in = known(first)
            if isinstance(module, _WINDOWED):
                g = _window_geometry(module, g_in, first.shape[2], output.shape[2]) if g_in else None
            elif next(module.children(), None) is None:  # norm, activation, dropout: same grid, same geometry
                same = first is not None and output.dim() == 4 and first.dim() == 4 and \
                    output.shape[2:] == first.shape[2:]
                g = g_in if same else None
            else:  # a container: its output may come from functional code (a sum, a concat)
                g = known(output)
            record(output, g)
            if not is_layer:
                return
            macs = macs_of(module, first, output)
            row = rows.get(name)
            if row is None:
                row = rows[name] = {"name": name, "kind": kind_of(module), "type": type(module).__name__,
                                    "params": sum(p.numel() for p in module.parameters(recurse=False)),
                                    "macs": 0, "calls": 0}
            spatial = g is not None and output.dim() == 4
            row.update(output_shape=tuple(int(s) for s in output.shape[1:]), macs=row["macs"] + macs,
                       calls=row["calls"] + 1, stride=round(g.jump) if spatial else None,
                       receptive_field=round(g.rf) if spatial else None,
                       offset=float(g.start) if spatial else None)
        return run

    handles = [m.register_forward_hook(hook(n, m, _is_layer(m))) for n, m in net.named_modules() if n]
    try:
        x = torch.zeros(1, 3, input_size, input_size, device=device)
        record(x, _Geometry(1.0, 1.0, 0.0, 0.0, float(input_size)))
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return list(rows.values())


def anatomy(model: Model, input_size: int | None = None) -> list[dict]:
    """Every layer of the network in the order the forward pass reaches it, one dict each:
    `name` (a key of net.named_modules()), `kind` (conv, depthwise conv, pointwise conv, linear,
    norm, activation, pool, dropout, ...), `type` (the module's class), `output_shape` (per
    picture, without the batch: (C, H, W) or (features,)), `params` (its own weights), `macs`
    (multiply-adds for one picture), `calls`, `stride` (input pixels per output cell),
    `receptive_field` (input pixels one cell sees, one side; the textbook value, which may exceed
    the picture), `offset` (input coordinate of cell 0's centre) and `stage` ("stride N" or
    "head"). stride, receptive_field and offset are None after a global pooling or flatten.

    `input_size` defaults to the model's own. Cached per network fingerprint and size: ask
    again and the same rows come back at once (copies: change them freely)."""
    size = int(input_size or model.input_size)
    if size < 1:
        raise ValueError(f"The input size must be at least 1 pixel, not {size}.")
    key = (fingerprint(model), size)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return [dict(r) for r in _CACHE[key]]
    with model.running() as net:
        try:
            rows = _trace(_meta_twin(net), size, "meta")
        except (NotImplementedError, RuntimeError):  # an operation with no meta kernel: compute for real
            rows = _trace(net, size, model.device)
    # A layer without a grid of its own (a squeeze-and-excitation branch after its global pooling)
    # belongs to the stage it sits in; only what follows the last grid is the head.
    last = max((i for i, r in enumerate(rows) if r["stride"] is not None), default=-1)
    stage = f"stride {rows[0]['stride']}" if rows and rows[0]["stride"] is not None else "head"
    for i, row in enumerate(rows):
        if row["stride"] is not None:
            stage = f"stride {row['stride']}"
        row["stage"] = stage if i <= last else "head"
    with _CACHE_LOCK:
        _CACHE[key] = rows
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return [dict(r) for r in rows]


def totals(rows: list[dict]) -> dict:
    """Sums over a network's rows: parameters, multiply-adds, layers, and those with weights."""
    return {"params": sum(r["params"] for r in rows), "macs": sum(r["macs"] for r in rows),
            "layers": len(rows), "weighted_layers": sum(1 for r in rows if r["params"])}


def stages(rows: list[dict]) -> list[dict]:
    """Parameters and multiply-adds per stage - the layers working at one stride (one resolution),
    then the head - in forward order: {"stage", "params", "macs", "layers", "size"}."""
    out: dict[str, dict] = {}
    for r in rows:
        s = out.setdefault(r["stage"], {"stage": r["stage"], "params": 0, "macs": 0, "layers": 0, "size": None})
        s["params"] += r["params"]
        s["macs"] += r["macs"]
        s["layers"] += 1
        if r["stride"] is not None and s["size"] is None:
            s["size"] = tuple(r["output_shape"][1:])
    order = sorted(out.values(), key=lambda s: (s["stage"] == "head", int(s["stage"].split()[-1])
                                                if s["stage"] != "head" else 0))
    return order


def field_box(row: dict, image_size: int, cell: tuple[int, int] | None = None) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of one cell's receptive field in the input picture, clipped to it;
    `cell` (row, col) defaults to the centre cell. None for a layer after global pooling."""
    if row.get("receptive_field") is None:
        return None
    _, h, w = row["output_shape"]
    r, c = cell if cell is not None else (h // 2, w // 2)
    half = (row["receptive_field"] - 1) / 2

    def span(i: int) -> tuple[int, int]:
        centre = row["offset"] + i * row["stride"]
        return max(0, math.floor(centre - half)), min(image_size, math.ceil(centre + half + 1))

    (x0, x1), (y0, y1) = span(c), span(r)
    return x0, y0, x1, y1


def format_count(n: float) -> str:
    """12,345,678 -> '12.3 M': how the table and the CLI print big counts."""
    for size, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"
