"""ONNX files, through onnx2torch: read with `onnx.load_model_from_string`, so no external file is
read behind our back; external data is read by us, only from files inside the model's own folder
(real paths, links followed). Every declared tensor is measured first, only standard operators
pass, and every node is renamed before onnx2torch pastes node names into torch.fx source; the
converted modules then move to dotted names from torch.onnx's record of the modules they came from."""
from __future__ import annotations

import os
import re

import torch
from torch import nn

from vislib.models.checkpoints import ModelError
from vislib.models.exported.checks import _brief, _declared, _fixed_batch, _numel, _shown
from vislib.models.exported.onnx_converters import _add_converters

_STANDARD_DOMAINS = ("", "ai.onnx")


def _read_onnx(data: bytes, folder: str | None) -> tuple[nn.Module, tuple]:
    import onnx
    from google.protobuf.message import DecodeError
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, TypeError) as err:
        raise ModelError("The file is not a readable ONNX model, perhaps it is incomplete.") from err
    try:
        return _convert_onnx(model, folder)
    except ModelError:
        raise
    except Exception as err:  # a field of a kind or value no exporter writes, found anywhere
        raise ModelError(f"The ONNX model could not be read ({_brief(err)}).") from err


def _convert_onnx(model, folder: str | None) -> tuple[nn.Module, tuple]:
    import onnx
    graph = model.graph
    if not graph.node or not graph.output:
        raise ModelError("The file is not a readable ONNX model, perhaps it is incomplete.")
    _check_onnx_ops(model)
    total = [0]
    for tensor, where in _tensors(graph):
        _declared(f"the tensor {_shown(tensor.name or where)}", tensor.dims, total)
    for tensor, _ in _tensors(graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            _external(tensor, folder)
    shape = _onnx_input(graph)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as err:  # onnx's checks: a broken graph
        raise ModelError(f"The ONNX model is not valid ({_brief(err)}).") from err
    for info in inferred.graph.value_info:  # a size made inside the graph (ConstantOfShape, Expand...)
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in info.type.tensor_type.shape.dim]
        _declared(f"the tensor {_shown(info.name)}", dims, [0])
    _constant_shapes(graph)
    names = _onnx_names(graph)
    for node, token in zip(graph.node, range(len(graph.node))):
        node.name = f"n{token}"  # onnx2torch pastes node names into torch.fx source: only ours go in
    _add_converters()
    import onnx2torch
    try:
        converted = onnx2torch.convert(model)
    except NotImplementedError as err:
        op = re.search(r"operation_type='(\w+)', version=(\d+)", str(err))
        what = f"the operator {op.group(1)} (opset {op.group(2)})" if op else f"a feature ({_brief(err)})"
        raise ModelError(f"The ONNX model uses {what}, which this app cannot turn into PyTorch yet.") from err
    except Exception as err:
        raise ModelError(f"The ONNX model could not be turned into PyTorch ({_brief(err)}).") from err
    return _renamed(converted, names), shape


def _constant_shapes(graph) -> None:
    """torch.onnx.export writes allowzero=1 on every Reshape, which onnx2torch's Reshape-14 refuses
    (opset 18, the exporter's default before torch 2.9); with a constant shape that holds no 0 it
    changes nothing, so it goes."""
    from onnx import numpy_helper
    constants = {t.name: t for t in graph.initializer}
    for node in graph.node:
        allowzero = [a for a in node.attribute if a.name == "allowzero" and a.i == 1]
        shape = constants.get(node.input[1]) if node.op_type == "Reshape" and len(node.input) > 1 else None
        if allowzero and shape is not None and len(shape.dims) == 1 and 0 not in numpy_helper.to_array(shape):
            node.attribute.remove(allowzero[0])


def _tensors(graph, where: str = "graph"):
    """Every TensorProto of a graph: initializers and constants, in subgraphs too."""
    for tensor in graph.initializer:
        yield tensor, where
    for sparse in graph.sparse_initializer:
        yield sparse.values, where
        yield sparse.indices, where
    for node in graph.node:
        for attr in node.attribute:
            tensors = ([attr.t] if attr.HasField("t") else []) + list(attr.tensors)
            tensors += [s.values for s in ([attr.sparse_tensor] if attr.HasField("sparse_tensor") else [])]
            for tensor in tensors:
                yield tensor, f"{node.op_type} {attr.name}"
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _tensors(sub, node.op_type)


def _check_onnx_ops(model) -> None:
    def nodes(graph):
        for node in graph.node:
            yield node
            for attr in node.attribute:
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    yield from nodes(sub)
    for node in nodes(model.graph):
        if node.domain not in _STANDARD_DOMAINS:
            raise ModelError(f"The ONNX model uses the operator {_shown(f'{node.domain}::{node.op_type}')}, which is "
                             f"not a standard "
                             f"ONNX operator; export the network with standard operators only.")


def _external(tensor, folder: str | None) -> None:
    """Read a tensor's external data ourselves: only from a file inside the model's own folder."""
    import onnx
    fields = {e.key: e.value for e in tensor.external_data}
    location = fields.get("location", "")
    if folder is None:
        # torch.onnx.export writes its weights beside the model unless told external_data=False
        raise ModelError("An uploaded ONNX model must hold its weights itself, but this one keeps them in a file "
                         f"outside it ({_shown(location)}); export it with torch.onnx.export(..., external_data=False) "
                         f"or save it with onnx.save(model, path, save_as_external_data=False).")
    home = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(home, location.replace("\0", "")))
    if not location or "\0" in location or os.path.isabs(location) or os.path.commonpath([home, path]) != home \
            or path == home:
        raise ModelError(f"The ONNX model's weights file {_shown(location)} lies outside the model's folder, so it was "
                         f"refused.")
    if not os.path.isfile(path):  # a folder, or a pipe that would never end
        raise ModelError(f"The ONNX model's weights file {_shown(location)} is not a file beside the model.")
    itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    try:
        offset, length = int(fields.get("offset", 0)), int(fields.get("length", _numel(tensor.dims) * itemsize))
    except ValueError:
        offset = length = -1
    if length != _numel(tensor.dims) * itemsize or offset < 0:
        raise ModelError(f"The ONNX model's tensor {_shown(tensor.name)} does not match the size of its external "
                         f"data.")
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.read(length)
    except OSError as err:
        raise ModelError(f"The ONNX model's weights file {_shown(location)} could not be read "
                         f"({err.strerror or err}).") from err
    if len(raw) != length:
        raise ModelError(f"The ONNX model's weights file {_shown(location)} is shorter than the model says.")
    tensor.raw_data = raw
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.DEFAULT


def _onnx_input(graph) -> tuple:
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelError(f"The network must take one batch of pictures and return one tensor of class scores, "
                         f"but it takes {len(inputs)} inputs and returns {len(graph.output)} outputs.")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise ModelError(f"The network must take a batch of pictures [N, C, H, W], but it takes a tensor of "
                         f"{len(dims)} dimensions.")
    out = graph.output[0].type.tensor_type
    if out.HasField("shape") and len(out.shape.dim) != 2:
        shown = ["N" if i == 0 else d.dim_value or _shown(d.dim_param) or "?" for i, d in enumerate(out.shape.dim)]
        raise ModelError(f"The network must map a batch of pictures to class scores [N, classes], but it returns "
                         f"[{', '.join(map(str, shown))}].")
    if dims[0] is not None:
        raise _fixed_batch("onnx", dims[0], dims[1:])
    return tuple(dims[1:])


# ---- module names: where torch's exporter says which module each node came from, that module's path

_RESERVED = set(dir(nn.Module())) | {"initializers"}  # not "forward", "training", or onnx2torch's weights


def _part(text: str) -> str:
    text = re.sub(r"\W+", "_", text, flags=re.ASCII).strip("_") or "op"
    return f"{text}_" if text in _RESERVED else text


def _scopes(node) -> list[str] | None:
    """The module path and operation a node came from, from torch.onnx's metadata: ['', 'block1',
    'block1.dw', 'conv2d_1'] (None when the exporter left none)."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes" and len(prop.value) < 4000:
            scopes = re.findall(r"'((?:[^'\\]|\\.)*)'", prop.value)
            return scopes if len(scopes) >= 2 else None
    return None


def _onnx_names(graph) -> list[str]:
    """One dotted, readable name per node. A module that became one ONNX node keeps its own path
    (block1.dw); a module that became several, or ran operations of its own, holds them under
    the operation's name (block1.add_40); the earlier nodes of one operation (a Linear's MatMul
    before its Add) sit inside the module of its last node, so that module gives the operation's
    output. Without the exporter's metadata a node is named by its ONNX name, made plain."""
    found = [_scopes(node) for node in graph.node]
    owners = [tuple(s[1:-1]) if s else None for s in found]
    containers = {path for chain in owners if chain for path in chain[:-1]}
    ops_in = {}
    for chain, scopes in zip(owners, found):
        if scopes:
            ops_in.setdefault(chain[-1] if chain else "", set()).add(scopes[-1])
    keys = []
    for node, chain, scopes in zip(graph.node, owners, found):
        if scopes is None:
            keys.append(None)
            continue
        path = chain[-1] if chain else ""
        parts = [_part(p) for p in path.split(".")] if path else []
        if not parts or path in containers or len(ops_in[path]) > 1:
            parts.append(_part(scopes[-1]))
        keys.append(".".join(parts))
    last = {key: i for i, key in enumerate(keys)}
    names, used = [], set()
    for i, (node, key) in enumerate(zip(graph.node, keys)):
        name = _part(node.name or node.op_type) if key is None else key if last[key] == i \
            else f"{key}.{_part(node.op_type.lower())}"
        unique, n = name, 1
        while unique in used:
            n += 1
            unique = f"{name}_{n}"
        used.add(unique)
        names.append(unique)
    return names


def _renamed(converted: torch.fx.GraphModule, names: list[str]) -> torch.fx.GraphModule:
    """onnx2torch's flat modules n0, n1... moved to their dotted names."""
    root = nn.Module()
    if hasattr(converted, "initializers"):  # the weights its operators take as inputs
        root.add_module("initializers", converted.initializers)
    for node in converted.graph.nodes:
        if node.op == "call_module" and re.fullmatch(r"n\d+(_\d+)?", node.target):
            module = converted.get_submodule(node.target)
            node.target = names[int(node.target[1:].split("_")[0])]
            _install(root, node.target, module)
    return torch.fx.GraphModule(root, converted.graph, class_name="OnnxNetwork")


def _install(root: nn.Module, name: str, module: nn.Module) -> None:
    *path, leaf = name.split(".")
    parent = root
    for part in path:
        if part not in parent._modules:
            parent.add_module(part, nn.Module())
        parent = parent._modules[part]
    placeholder = parent._modules.get(leaf)
    if placeholder is not None:  # a folder made for its inner nodes earlier: they move into the module
        for child, sub in placeholder.named_children():
            module.add_module(child, sub)
    parent.add_module(leaf, module)

