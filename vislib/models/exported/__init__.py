"""Whole networks from files, for architectures no library knows: torch.export's `.pt2` and ONNX.

`read_network(source)` gives a `Network`: an eval-mode module on the CPU that maps a float batch
[N, 3, H, W] to logits [N, classes], whose layers are real submodules (hooks fire on them once
per forward, under stable dotted names), and the input the file declares. `load_exported` makes
it a Model through `vislib.models.wrapped.wrap`.

Loading a file never runs code from it. Both formats can carry code in more places than a
pickle, so each is read by our own code, checked first and only then handed to the library:
- `.pt2` (a zip, `pt2.py`): torch.export.load would unpickle weights, constants and sample
  inputs without restriction, and the program itself holds Python (sizes, names, guards) that
  torch evaluates; we read the archive ourselves, refuse all that could run code and give
  torch's deserialiser the checked program with the tensors already made. The unflattened
  program's single layers become real torch.nn modules again (`pt2_layers.py`), so that the
  layer catalogue, receptive fields and the anatomy table see convolutions and pools.
- ONNX (`onnx_file.py`, through onnx2torch and the converters it lacks, `onnx_converters.py`):
  no external file is read behind our back; external data is read by us, only from files
  inside the model's own folder. onnx2torch pastes node names into torch.fx source, so every
  node is renamed first.
Every declared tensor is measured before anything is allocated (`checks.py`). Any error is a
ModelError of one sentence.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from vislib.models.checkpoints import MAX_CHECKPOINT_BYTES, ModelError
from vislib.models.exported.checks import MAX_TENSOR_ELEMENTS, MAX_TOTAL_ELEMENTS, _brief
from vislib.models.exported.onnx_file import _read_onnx
from vislib.models.exported.pt2 import _read_pt2

__all__ = ["MAX_TENSOR_ELEMENTS", "MAX_TOTAL_ELEMENTS", "GreyInput", "Network", "load_exported", "read_network"]


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


# ---------------------------------------------------------------- reading the whole file

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

