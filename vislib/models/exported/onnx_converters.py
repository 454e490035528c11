"""Converters for what torch.onnx.export (opset 18-23) writes and onnx2torch 1.5.15 lacks, added to
onnx2torch's registry once and never over one it has."""
from __future__ import annotations

import functools

import torch
from torch import nn


class _Reduce(nn.Module):
    """ReduceMean/Max/... from opset 18 on, where the axes became an input."""

    def __init__(self, op: str, axes: list[int] | None, keepdims: bool, noop: bool):
        super().__init__()
        self.op, self.axes, self.keepdims, self.noop = op, axes, keepdims, noop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.axes and self.noop:
            return x
        axes = sorted(a % x.dim() for a in self.axes) if self.axes else list(range(x.dim()))
        if self.op in ("ReduceMax", "ReduceMin"):
            return x.amax(axes, self.keepdims) if self.op == "ReduceMax" else x.amin(axes, self.keepdims)
        if self.op == "ReduceProd":
            for a in reversed(axes):
                x = x.prod(a, self.keepdims)
            return x
        ops = {"ReduceMean": torch.mean, "ReduceSum": torch.sum,
               "ReduceSumSquare": lambda t, *a: torch.sum(t * t, *a),
               "ReduceL1": lambda t, *a: torch.sum(t.abs(), *a),
               "ReduceL2": lambda t, *a: torch.sum(t * t, *a).sqrt(),
               "ReduceLogSum": lambda t, *a: torch.sum(t, *a).log(),
               "ReduceLogSumExp": torch.logsumexp}
        return ops[self.op](x, axes, self.keepdims)


class _Reshape(nn.Module):
    """Reshape, also with allowzero=1, which torch.onnx.export writes (a 0 in the shape is then a 0)."""

    def __init__(self, allowzero: bool):
        super().__init__()
        self.allowzero = allowzero

    def forward(self, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        sizes = [int(s) for s in shape.tolist()]
        if not self.allowzero:
            sizes = [x.shape[i] if s == 0 else s for i, s in enumerate(sizes)]
        return torch.reshape(x, sizes)


class _Split(nn.Module):
    """Split-18: by the sizes given, or into `parts` pieces of ceil(length / parts). A node whose
    later outputs nobody uses may list only the first, which onnx2torch then takes whole."""

    def __init__(self, axis: int, parts: int, outputs: int):
        super().__init__()
        self.axis, self.parts, self.outputs = axis, parts, outputs

    def forward(self, x: torch.Tensor, split: torch.Tensor | None = None):
        size = split.tolist() if split is not None else -(-x.shape[self.axis] // self.parts)
        pieces = torch.split(x, size, dim=self.axis)
        return pieces[0] if self.outputs == 1 else pieces


class _GroupNorm(nn.Module):
    """GroupNormalization-21 (torch.onnx.export writes nn.GroupNorm so from opset 21 on)."""

    def __init__(self, groups: int, eps: float):
        super().__init__()
        self.groups, self.eps = groups, eps

    def forward(self, x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return nn.functional.group_norm(x, self.groups, scale, bias, self.eps)


@functools.cache
def _add_converters() -> None:
    """Adds to onnx2torch's registry, once and never over one it has: a new onnx2torch that
    learns an operator keeps its own converter."""
    from onnx2torch.node_converters.registry import add_converter, get_converter
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult, get_const_value, onnx_mapping_from_node

    def register(op: str, versions, converter) -> None:
        for version in versions:
            try:
                add_converter(operation_type=op, version=version)(converter)
            except ValueError:  # already there
                pass

    def same_as(op: str, old: int, versions, refuse=lambda node: None) -> None:
        """Later versions that only added types or options; `refuse` names an option we cannot honour."""
        base = get_converter(operation_type=op, version=old)

        def converter(node, graph):
            problem = refuse(node)
            if problem:
                raise NotImplementedError(f"{op} with {problem}")
            return base(node, graph)
        register(op, versions, converter)

    def module(make):
        def converter(node, graph):
            return OperationConverterResult(torch_module=make(node, graph), onnx_mapping=onnx_mapping_from_node(node))
        return converter

    register("Gelu", [20], module(lambda node, _: nn.GELU(approximate=node.attributes.get("approximate", "none"))))
    register("Mish", [18, 22], module(lambda node, _: nn.Mish()))
    register("GroupNormalization", [21], module(lambda node, _: _GroupNorm(node.attributes["num_groups"],
                                                                           node.attributes.get("epsilon", 1e-5))))

    def reduce(node, graph):
        axes, inputs = None, node.input_values
        if len(inputs) > 1 and inputs[1]:
            try:
                axes = [int(a) for a in get_const_value(inputs[1], graph).tolist()]
            except KeyError as err:  # axes computed at run time
                raise NotImplementedError(f"{node.operation_type} with axes computed in the graph") from err
        return OperationConverterResult(
            torch_module=_Reduce(node.operation_type, axes, node.attributes.get("keepdims", 1) == 1,
                                 node.attributes.get("noop_with_empty_axes", 0) == 1),
            onnx_mapping=OnnxMapping(inputs=inputs[:1], outputs=node.output_values))
    for op in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
               "ReduceLogSumExp", "ReduceSumSquare"):
        register(op, [18, 20] if op in ("ReduceMax", "ReduceMin") else [18], reduce)

    register("Split", [18], module(lambda node, _: _Split(
        node.attributes.get("axis", 0), node.attributes.get("num_outputs", len(node.output_values)),
        len(node.output_values))))
    register("Reshape", [19, 21, 23], module(lambda node, _: _Reshape(node.attributes.get("allowzero", 0) == 1)))
    same_as("Flatten", 13, [21, 23])
    same_as("Transpose", 13, [21, 23])
    same_as("Unsqueeze", 13, [21, 23])
    same_as("Squeeze", 21, [23])
    same_as("Shape", 15, [19, 21, 23])
    same_as("Cast", 13, [19, 21, 23])
    same_as("Constant", 13, [19, 21, 23])
    same_as("ConstantOfShape", 9, [20, 21, 23])
    same_as("Identity", 16, [19, 21, 23])
    same_as("Equal", 13, [19])
    # opset 22 added bfloat16 to these, nothing else
    for op, old in (("Conv", 11), ("ConvTranspose", 11), ("MaxPool", 12), ("GlobalAveragePool", 1), ("Dropout", 13),
                    ("Elu", 6), ("Selu", 6), ("HardSigmoid", 6), ("HardSwish", 14), ("InstanceNormalization", 6),
                    ("Softplus", 1), ("Softsign", 1), ("Round", 11), ("Sin", 7), ("Cos", 7), ("Tan", 7),
                    ("Asin", 7), ("Acos", 7), ("Atan", 7)):
        same_as(op, old, [22])
    same_as("AveragePool", 11, [19, 22], lambda node: "dilations other than 1"
            if any(d != 1 for d in node.attributes.get("dilations", [])) else None)
    same_as("Pad", 13, [18, 19, 21, 23], lambda node: "wrap mode" if node.attributes.get("mode") == "wrap"
            else "axes" if len(node.input_values) > 3 and node.input_values[3] else None)
    same_as("Resize", 13, [18, 19], lambda node: next((option for option, used in [
        ("antialias", node.attributes.get("antialias", 0)), ("axes", node.attributes.get("axes")),
        ("keep_aspect_ratio_policy", node.attributes.get("keep_aspect_ratio_policy", "stretch") != "stretch"),
        ("half_pixel_symmetric", node.attributes.get("coordinate_transformation_mode") == "half_pixel_symmetric")]
        if used), None))
