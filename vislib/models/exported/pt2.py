"""`.pt2` files (torch.export.save), read by our own code and checked before torch sees them.

`torch.export.load` unpickles with `weights_only=False` every weight and tensor constant the
archive marks `use_pickle`, and the sample inputs (and the weights of archives from before torch
2.8) whenever the restricted unpickler refuses them; it loads custom objects with
`torch._C._pickle_load_obj`, opaque ones with `pickle.loads` and AOTInductor packages as shared
libraries. The program carries code of its own too: every symbolic size goes through
`sympy.sympify` (an `eval`), input names and attribute paths are pasted into the Python that
torch.fx compiles, `guards_code` is Python that `ExportedProgram.module()` compiles, and call
targets are looked up by name anywhere under `torch`. We read the zip ourselves and build every
tensor from its raw bytes (a pickled one only through `torch.load(weights_only=True)`; sample
inputs are never read), refuse custom objects, guard code and any call other than an aten
operator or integer arithmetic, admit only plain names and vetted size expressions, drop the
metadata the network does not need (stack traces), and hand torch's deserialiser the checked
program with the tensors already made. `torch.export.unflatten` then gives the module tree back,
whose single layers become real torch.nn modules again (`vislib.models.exported.pt2_layers`).
"""
from __future__ import annotations

import functools
import io
import json
import pickle
import re
import threading
import zipfile

import torch
from torch import nn

from vislib.models.checkpoints import MAX_CHECKPOINT_BYTES, ModelError
from vislib.models.exported.checks import _brief, _declared, _fixed_batch, _numel, _shown
from vislib.models.exported.pt2_layers import restore_layers

_PLAIN = re.compile(r"[A-Za-z0-9_.@]*\Z")      # names, module paths, operator names
_SYMBOL = re.compile(r"[a-z]+[0-9]+\Z")        # a size symbol: s77, u0
_UNSAFE = "The .pt2 file was refused because it could run code"
_STRINGS = {"as_string", "as_strings", "torch_version"}  # values only ever repr()'d or ignored
_SAFE_OPERATORS = {f"_operator.{n}" for n in ("getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "neg",
                                             "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_")} | \
    {f"torch.{n}" for n in ("sym_float", "sym_int", "sym_max", "sym_min", "sym_not", "sym_ite", "sym_sum",
                            "_sym_sqrt")} | {f"math.{n}" for n in ("ceil", "floor", "trunc", "sqrt")}
_UNSAFE_ATEN = {"from_file", "save", "_print", "warn"}  # read or write files, print
_CREATES = re.compile(r"(new_)?(empty|zeros|ones|full|rand|randn|randint|arange|linspace|logspace|eye|randperm)"
                      r"(_like|_strided)?\Z")
# sympy's srepr of a size: Symbol('s77', positive=True, integer=True), Mul(Integer(2), ...), FloorDiv(...)
_EXPRESSION_WORDS = {
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Max", "Min", "Mod", "Abs", "Eq", "Ne", "Lt", "Le",
    "Gt", "Ge", "And", "Or", "Not", "true", "false", "True", "False", "oo", "int_oo", "nan", "floor", "ceiling",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "IntTrueDiv", "FloatTrueDiv", "TruncToFloat", "TruncToInt", "RoundToInt", "ToFloat", "Identity",
    "StrictLessThan", "LessThan", "StrictGreaterThan", "GreaterThan", "Equality", "Unequality", "BooleanTrue",
    "BooleanFalse", "Infinity", "NegativeInfinity", "IntInfinity", "NegativeIntInfinity", "One", "Zero",
    "NegativeOne", "Half", "positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite",
    "nonzero", "zero", "even", "odd", "rational", "extended_real", "commutative", "infinite",
}  # no Pow, PowByNatural or FloatPow: sympy would compute 10**10**10 while parsing
_TOKEN = re.compile(r"\s+|[A-Za-z_]\w*|'[a-z]+[0-9]+'|\d{1,18}(\.\d{1,18})?(e-?\d{1,3})?|[(),=+\-/]|\*(?!\*)")


class _Refused(Exception):
    """A reason to refuse, raised deep in the checks and turned into a ModelError at the top."""


def _read_pt2(data: bytes) -> tuple[nn.Module, tuple]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        module, shape = _unpack_pt2(archive, {info.filename: info for info in archive.infolist()})
    except _Refused as err:
        raise ModelError(str(err)) from None
    except ModelError:
        raise
    except zipfile.BadZipFile as err:
        raise ModelError("The file is not a readable .pt2 archive (the zip file torch.export.save writes), "
                         "perhaps it is incomplete.") from err
    except pickle.UnpicklingError as err:
        raise ModelError(f"{_UNSAFE}: it holds pickled Python objects other than tensors.") from err
    except Exception as err:  # a damaged archive fails anywhere: json, zip, torch's deserialiser
        raise ModelError(f"The .pt2 file could not be read as an exported network ({_brief(err)}).") from err
    for sub in module.modules():  # what survey.py needs to see convolutions in an unflattened program
        kind = _pt2_kind(getattr(sub, "_ty", None))
        if kind:
            sub._vislib_kind = kind
    return module, shape


_DESERIALISING = threading.Lock()  # torch's deserialiser keeps the program being read in a global


def _unpack_pt2(archive: zipfile.ZipFile, entries: dict) -> tuple[nn.Module, tuple]:
    roots = [n[:-len("archive_format")] for n in entries if n.endswith("archive_format") and n.count("/") == 1]
    root = roots[0] if len(roots) == 1 else None
    if root is None or not _member(archive, entries, root + "archive_format", 64).startswith(b"pt2"):
        raise _Refused("The zip file is not a .pt2 archive of torch.export; save the network with "
                       "torch.export.save(torch.export.export(net, (x,), ...), \"net.pt2\").")
    if root + "models/model.json" not in entries:
        compiled = any(n.startswith(root + "data/aotinductor/") for n in entries)
        raise _Refused("The .pt2 file holds an AOTInductor package (machine code), which this app never loads; "
                       "save the exported program itself with torch.export.save." if compiled else
                       "The .pt2 archive holds no exported program (models/model.json).")
    if _member(archive, entries, root + "byteorder", 16) not in (b"", b"little"):
        raise _Refused("The .pt2 file stores its numbers big-endian, which this app does not read.")
    program = json.loads(_member(archive, entries, root + "models/model.json"))
    shape = _check_program(program)
    total = [0]
    state = _payloads(archive, entries, root, "weights", total)
    constants = _payloads(archive, entries, root, "constants", total)
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass
    serialized = _dict_to_dataclass(schema.ExportedProgram, program)
    with _DESERIALISING:  # example_inputs=None: the archive's pickled sample inputs are never read
        exported = ExportedProgramDeserializer().deserialize(serialized, state, constants, None)
    return restore_layers(torch.export.unflatten(exported)), shape


def _member(archive: zipfile.ZipFile, entries: dict, name: str, limit: int = MAX_CHECKPOINT_BYTES) -> bytes:
    """An entry's bytes, by its declared size capped first (a zip bomb's lie is caught by the CRC)."""
    info = entries.get(name)
    if info is None:
        return b""
    if info.file_size > limit:
        raise _Refused(f"The .pt2 archive's entry {_shown(name)} is larger than this app reads.")
    return archive.read(info)


def _pt2_kind(ty) -> str | None:
    if not isinstance(ty, str):
        return None
    cls = ty.rsplit(".", 1)[-1]
    if ty.startswith("torch.nn.modules.conv.") and cls == "Conv2d":
        return "conv"
    if ty.startswith("torch.nn.modules.pooling.") and cls.endswith("Pool2d"):
        return "pool"
    return None


def _check_program(program: dict) -> tuple:
    """Refuse whatever in the program could run code; return the user input's (C, H, W)."""
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        raise _Refused("The .pt2 file's program is not an exported program.")
    if program.get("guards_code"):
        raise _Refused(f"{_UNSAFE}: it carries guard code, Python that torch would compile and run.")
    module = program["graph_module"]
    if module.get("treespec_namedtuple_fields"):
        raise _Refused("The network must take one batch of pictures and return one tensor of class scores, "
                       "not named tuples.")
    module["metadata"] = {}  # free text torch keeps for itself
    _check_calls(module.get("module_call_graph") or [])
    graph = module.get("graph") or {}
    if graph.get("custom_obj_values"):
        raise _Refused(f"{_UNSAFE}: it holds custom objects, which are unpickled when loaded.")
    for node in graph.get("nodes") or []:
        _check_node(node)
    _vet(program, "")
    for name, meta in (graph.get("tensor_values") or {}).items():
        _declared(f"the tensor {name}", [s.get("as_int", 1) for s in meta.get("sizes", [])], [0])
    return _user_input(module.get("signature") or {}, graph)


@functools.cache
def _specs() -> dict[str, str]:
    """The call specs (pytree's JSON) of forward(x) -> tensor, as this torch writes them."""
    from torch.utils._pytree import tree_structure, treespec_dumps
    return {"in_spec": treespec_dumps(tree_structure(((0,), {}))), "out_spec": treespec_dumps(tree_structure(0))}


def _check_calls(calls: list) -> None:
    """The network's call: one tensor in, one out. Its specs are replaced by ours, so that no
    string of the file's own reaches pytree."""
    for entry in calls:
        signature = entry.get("signature")
        if entry.get("fqn") == "" and signature is not None:
            try:
                ok = all(json.loads(signature[k]) == json.loads(v) for k, v in _specs().items())
            except (TypeError, KeyError, ValueError):
                ok = False
            if not ok:
                raise _Refused("The network must take one batch of pictures and return one tensor of class scores.")
            signature.update(_specs())
        elif signature is not None:
            raise _Refused("The .pt2 file keeps the call signatures of inner modules "
                           "(preserve_module_call_signature), which this app does not read.")


def _check_node(node: dict) -> None:
    target = node.get("target")
    if not isinstance(target, str) or not _PLAIN.match(target):
        raise _Refused(f"{_UNSAFE}: a step of its graph calls {_shown(target)}.")
    if target.startswith("torch.ops.aten."):
        parts = target.split(".")
        packet = getattr(torch.ops.aten, parts[3], None) if len(parts) == 5 else None
        if not isinstance(packet, torch._ops.OpOverloadPacket) or parts[3] in _UNSAFE_ATEN \
                or not isinstance(getattr(packet, parts[4], None), torch._ops.OpOverload):
            raise _Refused(f"{_UNSAFE}: a step of its graph calls {target}, which is not a network operation.")
        values = [a.get("arg", {}) for a in node.get("inputs", [])]
        for value in values:  # creating a tensor: its size is declared in the call itself
            if "as_ints" in value:
                _declared(f"a step ({parts[3]}) making a tensor", [abs(v) for v in value["as_ints"]], [0])
            if "as_int" in value and _CREATES.match(parts[3]):
                _declared(f"a step ({parts[3]}) making a tensor", [abs(value["as_int"])], [0])
        named = {a.get("name"): a.get("arg", {}) for a in node.get("inputs", [])}
        if (parts[3] in ("batch_norm", "native_batch_norm", "_native_batch_norm_legit_functional")
                and named.get("training", {}).get("as_bool")) or \
                (parts[3] in ("dropout", "feature_dropout") and named.get("train", {}).get("as_bool")):
            raise _Refused("The network was exported in training mode; call net.eval() before torch.export.export "
                           "so that batch norm and dropout work as they do on new pictures.")
    elif target not in _SAFE_OPERATORS:
        raise _Refused(f"{_UNSAFE}: a step of its graph calls {target}, which is not a network operation.")
    stack = (node.get("metadata") or {}).get("nn_module_stack")
    # stack traces and other free text go: only the module nesting, which unflatten needs, stays
    node["metadata"] = {"nn_module_stack": stack} if stack else {}


def _vet(value, key: str) -> None:
    """Every string under `value` must be a plain name, a vetted size expression or a value that is
    only ever shown as a string literal; no operator or subgraph may be passed as an argument."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not _PLAIN.match(k):
                raise _Refused(f"{_UNSAFE}: it holds the name {_shown(k)}.")
            if k in ("as_operator", "as_graph"):
                raise _Refused(f"{_UNSAFE}: a step of its graph takes an operator or a subgraph as an argument.")
            _vet(v, k)
    elif isinstance(value, list):
        for v in value:
            _vet(v, key)
    elif isinstance(value, str):
        if key == "expr_str":
            _vet_expression(value)
        elif key == "nn_module_stack":  # "key,path,type;..." for each module around a step
            for item in value.split(";"):
                if len(item.split(",")) != 3 or not all(_PLAIN.match(part) for part in item.split(",")):
                    raise _Refused(f"{_UNSAFE}: a module of its graph is named {_shown(item)}.")
        elif key in _specs():
            if value != _specs()[key]:
                raise _Refused(f"{_UNSAFE}: it holds the call spec {_shown(value)}.")
        elif key not in _STRINGS and not _PLAIN.match(value):
            raise _Refused(f"{_UNSAFE}: it holds the name {_shown(value)}.")
    elif not isinstance(value, (bool, int, float, type(None))):
        raise _Refused("The .pt2 file's program is not an exported program.")


def _vet_expression(text: str) -> None:
    """A size expression is parsed by sympy's eval: only sympy's own words, numbers and symbols pass."""
    ok = len(text) <= 2000
    at = 0
    while ok and at < len(text):
        token = _TOKEN.match(text, at)
        ok = token is not None and (not token.group()[0].isalpha() and token.group()[0] != "_"
                                    or token.group() in _EXPRESSION_WORDS or _SYMBOL.match(token.group()))
        at = token.end() if token else at
    if not ok:
        raise _Refused(f"{_UNSAFE}: a size in it is the expression {_shown(text)}.")


def _user_input(signature: dict, graph: dict) -> tuple:
    inputs = [s["user_input"]["arg"] for s in signature.get("input_specs", []) if "user_input" in s]
    outputs = [s for s in signature.get("output_specs", []) if "user_output" not in s]
    kinds = {k for s in signature.get("input_specs", []) for k in s} - {"user_input", "parameter", "buffer",
                                                                      "tensor_constant"}
    if kinds:
        raise _Refused(f"{_UNSAFE}: it holds custom objects, which are unpickled when loaded." if "custom_obj" in kinds
                       else f"The .pt2 file's program takes inputs of kind {', '.join(sorted(kinds))}, which this app "
                            f"does not support.")
    if outputs:
        raise _Refused("The network was exported in training mode (it updates its batch norm statistics); call "
                       "net.eval() before torch.export.export.")
    if len(inputs) != 1 or "as_tensor" not in inputs[0]:
        raise _Refused("The network must take one batch of pictures and return one tensor of class scores.")
    sizes = (graph.get("tensor_values") or {}).get(inputs[0]["as_tensor"].get("name"), {}).get("sizes", [])
    dims = [s.get("as_int") if isinstance(s, dict) else None for s in sizes]
    if len(dims) != 4:
        raise _Refused(f"The network must take a batch of pictures [N, C, H, W], but it takes a tensor of "
                       f"{len(dims)} dimensions.")
    if dims[0] is not None:
        raise _fixed_batch("pt2", dims[0], dims[1:])
    return tuple(dims[1:])


def _payloads(archive, entries: dict, root: str, kind: str, total: list[int]) -> dict[str, torch.Tensor]:
    """The weights or constants, each made from its raw bytes after its declared shape is checked."""
    folder = f"{root}data/{kind}/"
    legacy = f"{folder}model.pt"  # the format before torch 2.8: one torch.save'd dict
    if legacy in entries:
        state = torch.load(io.BytesIO(_member(archive, entries, legacy)), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise _Refused(f"The .pt2 file's {kind} are not tensors.")
        for name, value in state.items():
            _declared(f"the tensor {_shown(name)}", value.shape, total)
        return state
    config_name = f"{folder}model_{kind}_config.json"
    if config_name not in entries:
        if kind == "constants":
            return {}
        raise _Refused("The .pt2 archive has no weights (data/weights/model_weights_config.json).")
    config = json.loads(_member(archive, entries, config_name)).get("config", {})
    made: dict[str, torch.Tensor] = {}
    stored: dict[str, torch.Tensor] = {}  # tied weights share one file
    for name, payload in config.items():
        path = payload.get("path_name", "")
        if not _PLAIN.match(name) or not re.fullmatch(r"[A-Za-z0-9_]+", path or "-"):
            raise _Refused(f"{_UNSAFE}: a tensor is named {_shown(name)}.")
        if not path.startswith(("weight_", "tensor_")):  # custom_obj_*, opaque_obj_*: unpickled objects
            raise _Refused(f"{_UNSAFE}: it holds a pickled Python object ({path}).")
        entry = folder + path
        if payload.get("use_pickle"):
            tensor = torch.load(io.BytesIO(_member(archive, entries, entry)), map_location="cpu", weights_only=True)
            if type(tensor) not in (torch.Tensor, nn.Parameter):
                raise _Refused(f"The .pt2 file's {kind[:-1]} {name} is not a tensor.")
            _declared(f"the tensor {name}", tensor.shape, total)
        else:
            tensor = _tensor(name, payload.get("tensor_meta") or {}, archive, entries, entry, stored, total)
        if payload.get("is_param"):
            tensor = nn.Parameter(tensor, requires_grad=tensor.is_floating_point())
        made[name] = tensor
    return made


def _tensor(name: str, meta: dict, archive, entries: dict, entry: str, stored: dict, total: list[int]):
    from torch._export.serde.serialize import deserialize_scalar_type
    dtype = deserialize_scalar_type(meta.get("dtype"))
    sizes = [s["as_int"] for s in meta.get("sizes", [])]
    strides = [s["as_int"] for s in meta.get("strides", [])]
    offset = meta.get("storage_offset", {}).get("as_int", 0)
    if meta.get("layout", 7) != 7 or len(strides) != len(sizes) or min(strides + [offset, 0]) < 0:
        raise _Refused(f"The .pt2 file's tensor {name} is not a plain dense tensor.")
    _declared(f"the tensor {name}", sizes, [0])
    needed = (offset + sum((n - 1) * s for n, s in zip(sizes, strides)) + 1) if _numel(sizes) else 0
    if entry not in stored:
        info = entries.get(entry)
        if info is None:
            raise _Refused(f"The .pt2 archive lacks the numbers of the tensor {name}.")
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if info.file_size % itemsize or info.file_size // itemsize < needed:
            raise _Refused(f"The .pt2 archive holds fewer numbers than its tensor {name} declares.")
        _declared(f"the stored tensor {name}", [info.file_size // itemsize], total)  # what memory it takes
        raw = bytearray(_member(archive, entries, entry))  # a bytearray: the tensor owns writable memory
        stored[entry] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
    flat = stored[entry]
    if flat.numel() < needed:
        raise _Refused(f"The .pt2 archive holds fewer numbers than its tensor {name} declares.")
    return torch.as_strided(flat, sizes, strides, offset)

