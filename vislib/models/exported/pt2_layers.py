"""Real torch.nn layers in an unflattened `.pt2` program.

`torch.export.unflatten` gives the module tree back, but every module in it is an
`InterpreterModule` running a piece of the graph: nothing tells the layer catalogue, the
receptive-field recurrence (`vislib.models.layers.measure`, which reads kernel_size, stride,
padding and dilation of real nn.Conv2d / nn.MaxPool2d / nn.AvgPool2d modules) or the anatomy
table (parameters and multiply-adds by module type) that one of them is a convolution. So each
leaf whose graph is exactly one operation of the module class it came from (its `_ty`) becomes
that class again: an nn.Conv2d built from the arguments of its aten.conv2d call (kernel size from
the weight, stride, padding, dilation, groups), pools, batch norm in eval mode, a linear layer,
the common activations, dropout and flatten; a Sequential whose graph only chains its children
in order becomes an nn.Sequential of them. The new module holds the very parameter and buffer
tensors of the one it replaces (nothing is copied) and takes its name in its parent, whose graph
then calls it. Anything else - two operations, an argument from elsewhere, a subclass, a weight
under another name - stays an InterpreterModule.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.export.unflatten import InterpreterModule, UnflattenedModule

_NN = "torch.nn.modules."


def restore_layers(root: nn.Module) -> nn.Module:
    """`root` with its single-operation InterpreterModules replaced by real layers, in place."""
    done: dict[int, nn.Module] = {}

    def visit(parent: nn.Module) -> None:
        changed = False
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            if id(child) not in done:
                visit(child)
                done[id(child)] = _real(child) or child
            if done[id(child)] is not child:
                parent._modules[name] = done[id(child)]
                changed = True
        if changed and isinstance(parent, (InterpreterModule, UnflattenedModule)):
            parent.finalize()  # its compiled twin refers to the children it had

    visit(root)
    return root


def _real(module: nn.Module) -> nn.Module | None:
    """The real layer an InterpreterModule stands for, or None where its graph is anything else."""
    if type(module) is not InterpreterModule or not isinstance(module._ty, str) or \
            not module._ty.startswith(_NN):
        return None
    try:
        made = _sequential(module) if module._modules else _single(module)
    except Exception:  # an argument of a kind or value the class refuses: leave it as it is
        return None
    if made is not None:
        made.train(module.training)
    return made


def _single(module: InterpreterModule) -> nn.Module | None:
    nodes = list(module.graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    calls = [n for n in nodes if n.op == "call_function"]
    attrs = [n for n in nodes if n.op == "get_attr"]
    if len(inputs) != 1 or len(calls) != 1 or len(inputs) + len(calls) + len(attrs) + 1 != len(nodes):
        return None
    call, output = calls[0], nodes[-1]
    if output.op != "output" or output.args not in ((call,), ((call,),)) or \
            not isinstance(call.target, torch._ops.OpOverload) or call.target.namespace != "aten":
        return None
    schema = call.target._schema.arguments
    if len(call.args) > len(schema) or set(call.kwargs) - {a.name for a in schema}:
        return None
    args = {}
    for i, spec in enumerate(schema):
        if i < len(call.args):
            args[spec.name] = call.args[i]
        elif spec.name in call.kwargs:
            args[spec.name] = call.kwargs[spec.name]
        elif spec.has_default_value():
            args[spec.name] = spec.default_value
        else:
            return None
    if args.pop(schema[0].name) is not inputs[0]:
        return None
    tensors = {}
    for name, value in args.items():  # a weight must be the module's own attribute of the same name
        if isinstance(value, torch.fx.Node):
            if value.op != "get_attr" or value.target != name or value.users.keys() != {call}:
                return None
            tensors[name] = getattr(module, name)
            args[name] = None
        elif isinstance(value, (list, tuple)) and any(isinstance(v, torch.fx.Node) for v in value):
            return None
    op = call.target.name().split("::", 1)[1]
    build = _BUILDERS.get(module._ty[len(_NN):])
    made = build(op if "." in op else f"{op}.default", args, tensors) if build else None
    return made if made is not None and _adopt(made, module, tensors) else None


def _adopt(made: nn.Module, module: nn.Module, tensors: dict) -> bool:
    """Give `made` the parameters and buffers of `module` (the same tensors) if they match in name,
    kind and shape, and the graph read exactly these."""
    params = {k: v for k, v in made._parameters.items() if v is not None}
    buffers = {k: v for k, v in made._buffers.items() if v is not None}
    own_params = {k: v for k, v in module._parameters.items() if v is not None}
    own_buffers = {k: v for k, v in module._buffers.items() if v is not None}
    if params.keys() != own_params.keys() or buffers.keys() != own_buffers.keys() or \
            not set(tensors) <= params.keys() | buffers.keys() or \
            any(tuple(v.shape) != tuple(own_params[k].shape) for k, v in params.items()) or \
            any(tuple(v.shape) != tuple(own_buffers[k].shape) for k, v in buffers.items()):
        return False
    for k, v in own_params.items():
        made._parameters[k] = v
    for k, v in own_buffers.items():
        made._buffers[k] = v
    made._non_persistent_buffers_set = set(module._non_persistent_buffers_set) & buffers.keys()
    return True


def _sequential(module: InterpreterModule) -> nn.Sequential | None:
    """An nn.Sequential where the graph only calls each child once, in order, on the last output."""
    nodes = list(module.graph.nodes)
    if module._ty != f"{_NN}container.Sequential" or module._parameters or module._buffers or \
            len(nodes) < 3 or nodes[0].op != "placeholder" or nodes[-1].op != "output" or \
            nodes[-1].args not in ((nodes[-2],), ((nodes[-2],),)):
        return None
    for before, node in zip(nodes, nodes[1:-1]):
        if node.op != "call_module" or node.args != (before,) or node.kwargs:
            return None
    if [n.target for n in nodes[1:-1]] != list(module._modules) or None in module._modules.values():
        return None
    return nn.Sequential(OrderedDict(module._modules))


# ---------------------------------------------------------------- each class from its operation

def _ints(value, n: int = 2) -> tuple[int, ...] | None:
    """[3, 3] or 3 as (3, 3); None for anything but plain integers."""
    value = [value] * n if isinstance(value, int) else list(value) * (n if len(value) == 1 else 1)
    return tuple(value) if len(value) == n and all(type(v) is int for v in value) else None


def _square(value) -> int | tuple[int, int]:
    """A pool's size as people write it: 2 for (2, 2)."""
    return value[0] if value[0] == value[1] else value


def _conv(op: str, a: dict, t: dict) -> nn.Module | None:
    weight = t.get("weight")
    if op == "convolution.default" and (a.pop("transposed") or any(_ints(a.pop("output_padding")))):
        return None
    if op not in ("conv2d.default", "conv2d.padding", "convolution.default") or weight is None or weight.dim() != 4:
        return None
    padding = a["padding"] if op == "conv2d.padding" else _ints(a["padding"])
    stride, dilation, groups = _ints(a["stride"]), _ints(a["dilation"]), a["groups"]
    if None in (padding, stride, dilation) or type(groups) is not int:
        return None
    return nn.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), stride, padding, dilation,
                     groups, bias="bias" in t, device="meta", dtype=weight.dtype)


def _max_pool(op: str, a: dict, t: dict) -> nn.Module | None:
    kernel, padding, dilation = _ints(a["kernel_size"]), _ints(a["padding"]), _ints(a["dilation"])
    stride = _ints(a["stride"]) if a["stride"] else kernel
    if op != "max_pool2d.default" or None in (kernel, stride, padding, dilation):
        return None
    return nn.MaxPool2d(_square(kernel), _square(stride), _square(padding), _square(dilation),
                        ceil_mode=bool(a["ceil_mode"]))


def _avg_pool(op: str, a: dict, t: dict) -> nn.Module | None:
    kernel, padding = _ints(a["kernel_size"]), _ints(a["padding"])
    stride = _ints(a["stride"]) if a["stride"] else kernel
    if op != "avg_pool2d.default" or None in (kernel, stride, padding):
        return None
    return nn.AvgPool2d(_square(kernel), _square(stride), _square(padding), bool(a["ceil_mode"]),
                        bool(a["count_include_pad"]), a["divisor_override"])


def _adaptive_avg_pool(op: str, a: dict, t: dict) -> nn.Module | None:
    size = _ints(a["output_size"])
    return nn.AdaptiveAvgPool2d(_square(size)) if op == "adaptive_avg_pool2d.default" and size else None


def _batch_norm(kind):
    def build(op: str, a: dict, t: dict) -> nn.Module | None:
        mean, var = t.get("running_mean"), t.get("running_var")
        if op != "batch_norm.default" or a["training"] or mean is None or var is None or \
                ("bias" in t and "weight" not in t):
            return None
        bias = {"bias": "bias" in t} if "weight" in t else {}  # an affine one may have a weight only
        return kind(mean.shape[0], a["eps"], a["momentum"], affine="weight" in t, device="meta", dtype=mean.dtype,
                    **bias)
    return build


def _linear(op: str, a: dict, t: dict) -> nn.Module | None:
    weight = t.get("weight")
    if op != "linear.default" or weight is None or weight.dim() != 2:
        return None
    return nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in t, device="meta", dtype=weight.dtype)


def _plain(kind, name: str, check=lambda a: True, make=None):
    """An activation (or dropout, flatten) of one aten operation, in place where it ends in '_'."""
    def build(op: str, a: dict, t: dict) -> nn.Module | None:
        if t or op not in (f"{name}.default", f"{name}_.default", f"{name}.using_ints") or not check(a):
            return None
        made = make(a) if make else kind()
        if op.startswith(f"{name}_."):
            if not hasattr(made, "inplace"):
                return None
            made.inplace = True
        return made
    return build


_BUILDERS = {
    "conv.Conv2d": _conv,
    "pooling.MaxPool2d": _max_pool,
    "pooling.AvgPool2d": _avg_pool,
    "pooling.AdaptiveAvgPool2d": _adaptive_avg_pool,
    "batchnorm.BatchNorm1d": _batch_norm(nn.BatchNorm1d),
    "batchnorm.BatchNorm2d": _batch_norm(nn.BatchNorm2d),
    "batchnorm.BatchNorm3d": _batch_norm(nn.BatchNorm3d),
    "linear.Linear": _linear,
    "activation.ReLU": _plain(nn.ReLU, "relu"),
    "activation.ReLU6": _plain(nn.ReLU6, "hardtanh", lambda a: (a["min_val"], a["max_val"]) == (0, 6)),
    "activation.Hardtanh": _plain(nn.Hardtanh, "hardtanh", make=lambda a: nn.Hardtanh(a["min_val"], a["max_val"])),
    "activation.LeakyReLU": _plain(nn.LeakyReLU, "leaky_relu", make=lambda a: nn.LeakyReLU(a["negative_slope"])),
    "activation.ELU": _plain(nn.ELU, "elu", lambda a: a["scale"] == 1 and a["input_scale"] == 1,
                             lambda a: nn.ELU(a["alpha"])),
    "activation.SiLU": _plain(nn.SiLU, "silu"),
    "activation.Mish": _plain(nn.Mish, "mish"),
    "activation.Hardswish": _plain(nn.Hardswish, "hardswish"),
    "activation.Hardsigmoid": _plain(nn.Hardsigmoid, "hardsigmoid"),
    "activation.Sigmoid": _plain(nn.Sigmoid, "sigmoid"),
    "activation.Tanh": _plain(nn.Tanh, "tanh"),
    "activation.GELU": _plain(nn.GELU, "gelu", lambda a: a["approximate"] in ("none", "tanh"),
                              lambda a: nn.GELU(a["approximate"])),
    "dropout.Dropout": _plain(nn.Dropout, "dropout", lambda a: not a["train"], lambda a: nn.Dropout(a["p"])),
    "flatten.Flatten": _plain(nn.Flatten, "flatten", make=lambda a: nn.Flatten(a["start_dim"], a["end_dim"])),
}
