"""Whole networks from files, for architectures no library knows: torch.export's `.pt2` and ONNX.

`read_network(source)` gives a `Network`: an eval-mode module on the CPU that maps a float batch
[N, 3, H, W] to logits [N, classes], whose layers are real submodules (hooks fire on them once
per forward, under stable dotted names), and the input the file declares. `load_exported` makes
it a Model through `vislib.models.wrapped.wrap`.

Loading a file never runs code from it. Both formats can carry code in more places than a
pickle, so each is read by our own code, checked first and only then handed to the library:
- `.pt2` (a zip): `torch.export.load` unpickles with `weights_only=False` every weight and
  tensor constant the archive marks `use_pickle`, and the sample inputs (and the weights of
  archives from before torch 2.8) whenever the restricted unpickler refuses them; it loads custom
  objects with `torch._C._pickle_load_obj`, opaque ones with `pickle.loads` and AOTInductor
  packages as shared libraries. The program carries code of its own too: every symbolic size
  goes through `sympy.sympify` (an `eval`), input names and attribute paths are pasted into the
  Python that torch.fx compiles, `guards_code` is Python that `ExportedProgram.module()`
  compiles, and call targets are looked up by name anywhere under `torch`. We read the zip
  ourselves and build every tensor from its raw bytes (a pickled one only through
  `torch.load(weights_only=True)`; sample inputs are never read), refuse custom objects, guard
  code and any call other than an aten operator or integer arithmetic, admit only plain names
  and vetted size expressions, drop the metadata the network does not need (stack traces), and
  hand torch's deserialiser the checked program with the tensors already made.
- ONNX: `onnx.load_model_from_string`, so no external file is read behind our back; external
  data is read by us, only from files inside the model's own folder (real paths, links
  followed). onnx2torch pastes node names into torch.fx source, so every node is renamed first.
Every declared tensor is measured before anything is allocated. Any error is a ModelError of
one sentence.
"""
from __future__ import annotations

import functools
import io
import json
import math
import os
import pickle
import re
import threading
import zipfile
from dataclasses import dataclass

import torch
from torch import nn

from vislib.models.checkpoints import MAX_CHECKPOINT_BYTES, ModelError

MAX_TENSOR_ELEMENTS = 2**28  # one declared tensor: 1 GiB of float32, far above any CNN layer
MAX_TOTAL_ELEMENTS = 2**28   # all weights together (ONNX shape inference fails past 2 GB)


@dataclass(frozen=True)
class Network:
    """A loaded whole-network file.

    module: eval mode, on the CPU, [N, 3, H, W] -> [N, classes]; a one-channel network is inside
        `GreyInput`, whose `net` holds it (its layers are then named `net.…`).
    channels: the input channels the file declares (None: not declared).
    size: (H, W) the file declares, each None where it is dynamic.
    kind: "pt2" or "onnx"."""
    module: nn.Module
    channels: int | None
    size: tuple[int | None, int | None]
    kind: str


class GreyInput(nn.Module):
    """A one-channel network that takes RGB batches too: the three channels are averaged first."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.mean(1, keepdim=True) if x.shape[1] != 1 else x)


def read_network(source) -> Network:
    """The network in a `.pt2` (torch.export.save) or `.onnx` file: a path, bytes or an upload.

    The kind comes from the name's ending, or for bytes without one from the content (a zip is
    a .pt2). The batch must be dynamic; a one-channel network is wrapped in GreyInput."""
    name, data, folder = _read(source)
    kind = "pt2" if name.lower().endswith(".pt2") else "onnx" if name.lower().endswith(".onnx") \
        else "pt2" if data[:4] == b"PK\x03\x04" else "onnx"
    module, shape = _read_pt2(data) if kind == "pt2" else _read_onnx(data, folder)
    channels, height, width = shape
    if channels == 1:
        module = GreyInput(module)
    module = module.eval()
    _dry_run(module, height or width or 224, width or height or 224)
    return Network(module, channels, (height, width), kind)


def load_exported(source, labels=None, input_size=None, mean=None, std=None, device=None, name=None):
    """A Model of the network in a `.pt2` or `.onnx` file; `input_size` defaults to the height the
    file declares (224 where it is dynamic), `mean` and `std` to ImageNet's."""
    from vislib.models.wrapped import IMAGENET_MEAN, IMAGENET_STD, wrap
    network = read_network(source)
    height, width = network.size
    if height and width and (height != width or input_size not in (None, height)):
        raise ModelError(f"The network takes pictures of exactly {height} x {width} pixels, so it cannot work on "
                         f"{input_size or height} x {input_size or height} ones; export it with a dynamic size or "
                         f"choose {height}." if height == width else
                         f"The network takes pictures of {height} x {width} pixels, but this app works on square "
                         f"pictures; export it for a square size or with a dynamic one.")
    if name is None:
        name = os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) \
            else getattr(source, "name", "") or f"exported network ({network.kind})"
    return wrap(network.module, labels=labels, input_size=input_size or network.size[0] or 224,
                mean=IMAGENET_MEAN if mean is None else mean, std=IMAGENET_STD if std is None else std,
                name=name, device=device)


# ---------------------------------------------------------------- reading and checking the whole

def _read(source) -> tuple[str, bytes, str | None]:
    """(file name, its bytes, its folder or None for bytes and uploads), the size capped."""
    cap = f"The file is larger than {MAX_CHECKPOINT_BYTES >> 20} MB, the most this app reads."
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            if os.path.getsize(path) > MAX_CHECKPOINT_BYTES:
                raise ModelError(cap)
            with open(path, "rb") as f:
                data = f.read(MAX_CHECKPOINT_BYTES + 1)
        except OSError as err:  # a mistyped path must give a sentence, not a traceback
            raise ModelError(f"The file {path} could not be read ({err.strerror or err}).") from err
        name, folder = os.path.basename(path), os.path.dirname(os.path.abspath(path))
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name, data, folder = "", bytes(source), None
    elif hasattr(source, "getvalue") or hasattr(source, "read"):
        # Streamlit's UploadedFile is a BytesIO: getvalue() is the whole file wherever it was read to
        data = source.getvalue() if hasattr(source, "getvalue") else source.read(MAX_CHECKPOINT_BYTES + 1)
        name, data, folder = str(getattr(source, "name", "") or ""), bytes(data), None
    else:
        raise ModelError(f"A network file is a path, bytes or an uploaded file, not {type(source).__name__}.")
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise ModelError(cap)
    if not data:
        raise ModelError("The network file is empty.")
    return name, data, folder


def _dry_run(module: nn.Module, height: int, width: int) -> None:
    """Batches of 1 and 2 zero pictures must give [N, classes]: a fixed batch or a wrong output
    is found now, in one sentence, rather than on the first page that uses the network."""
    classes = None
    for n in (1, 2):
        try:
            with torch.no_grad():
                out = module(torch.zeros(n, 3, height, width))
        except Exception as err:  # the file's own network, at a size it may not take
            raise ModelError(f"The network could not run on a batch of {n} picture{'s' * (n > 1)} of "
                             f"{height} x {width} pixels ({_brief(err)}).") from err
        shape = list(out.shape) if isinstance(out, torch.Tensor) else None
        if shape is None or len(shape) != 2 or shape[0] != n or shape[1] < 1 or classes not in (None, shape[1]):
            got = f"a tensor of shape {shape}" if shape is not None else f"a {type(out).__name__}"
            raise ModelError(f"The network must map a batch of pictures to class scores [N, classes], "
                             f"but it returned {got}.")
        classes = shape[1]


def _brief(err: BaseException) -> str:
    """An error's first line, short, without a full stop that would start a second sentence."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    text = re.split(r"[.!?]\s", text, maxsplit=1)[0].rstrip(".!? ")
    return (text[:160] + "...") if len(text) > 160 else text or type(err).__name__


def _shown(text: str) -> str:
    """A name from a file, fit for a one-line sentence: quoted and escaped when it holds a line
    break, or a full stop that would end the sentence."""
    text = str(text)[:80]
    if text.isprintable() and not re.search(r"[.!?]\s", text):
        return text
    return re.sub(r"([.!?]) ", r"\1\\x20", repr(text))


def _numel(dims) -> int:
    return math.prod(max(int(d), 0) for d in dims)


def _declared(what: str, dims, total: list[int]) -> None:
    """Refuse a tensor by its declared shape, before anything is allocated; `total` sums them."""
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims) or _numel(dims) > MAX_TENSOR_ELEMENTS:
        raise ModelError(f"The file declares {what} of shape {dims}, more than the "
                         f"{MAX_TENSOR_ELEMENTS:,} numbers one tensor may have here.")
    total[0] += _numel(dims)
    if total[0] > MAX_TOTAL_ELEMENTS:
        raise ModelError(f"The file declares more than {MAX_TOTAL_ELEMENTS:,} numbers in all, more than "
                         f"this app loads.")


def _fixed_batch(kind: str, batch: int, shape) -> ModelError:
    c, h, w = (d or s for d, s in zip(shape, (3, 224, 224)))
    x = f"torch.randn(2, {c}, {h}, {w})"
    dynamic = 'dynamic_shapes=({0: torch.export.Dim("batch")},)'
    recipe = (f"torch.export.save(torch.export.export(net, ({x},), {dynamic}), \"net.pt2\") with an example batch "
              f"of 2 (torch.export fixes a batch of 1)" if kind == "pt2" else
              f"torch.onnx.export(net, ({x},), \"net.onnx\", {dynamic}, external_data=False) or, with dynamo=False, "
              f"input_names=[\"x\"], dynamic_axes={{\"x\": {{0: \"batch\"}}}}")
    return ModelError(f"The network was exported for a fixed batch of {batch} picture{'s' * (batch != 1)}, but this "
                      f"app runs batches of every size; export it again with a dynamic batch: {recipe}.")


# ---------------------------------------------------------------- .pt2: torch.export

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
    return torch.export.unflatten(exported), shape


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


# ---------------------------------------------------------------- ONNX, through onnx2torch

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


# ---- converters for what torch.onnx.export (opset 18-21) writes and onnx2torch 1.5.15 lacks

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
