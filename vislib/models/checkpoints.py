"""A person's own weight files: read without ever running code from them, and made into a Model.

`.safetensors` holds only tensors by design. Anything else goes through
`torch.load(weights_only=True)`, whose restricted unpickler refuses every object that is not a
tensor or a plain container; we never fall back to full unpickling, because a pickle can run
any program it likes when it is loaded.
"""
from __future__ import annotations

import io
import os
import pickle
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the registry imports this module
    from vislib.models.model import Model
    from vislib.models.registry import Family


class ModelError(RuntimeError):
    """A model could not be loaded; the message is one sentence a person can act on."""


# The largest torchvision CNN's weights (regnet_y_128gf) take 2.4 GB; the app's uploads are capped
# lower by Streamlit's maxUploadSize. A file is read whole into memory, so the cap bounds that too.
MAX_CHECKPOINT_BYTES = 3 * 2**30


def _open(source) -> tuple[str, bytes | str]:
    """(file name, path or bytes) for a path, bytes or an uploaded file."""
    if isinstance(source, (str, os.PathLike)):
        try:
            size = os.path.getsize(source)
        except OSError as err:  # a mistyped path must give a sentence, not a traceback
            raise ModelError(f"The file {os.fspath(source)} could not be read ({err.strerror or err}).") from err
        if size > MAX_CHECKPOINT_BYTES:
            raise ModelError(f"The checkpoint is larger than {MAX_CHECKPOINT_BYTES >> 20} MB.")
        return os.path.basename(str(source)), str(source)
    name = getattr(source, "name", "") or ""
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else source.read(MAX_CHECKPOINT_BYTES + 1)
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise ModelError(f"The checkpoint is larger than {MAX_CHECKPOINT_BYTES >> 20} MB.")
    return name, data


def load_state_dict(source) -> dict[str, torch.Tensor]:
    """A state_dict from a `.safetensors` file or a `torch.save`d state_dict (tensors only)."""
    name, data = _open(source)
    if name.endswith(".safetensors") or (isinstance(data, bytes) and data[8:9] == b"{"):
        from safetensors.torch import load, load_file
        try:
            state = load(data) if isinstance(data, bytes) else load_file(data)
        except Exception as err:  # safetensors raises its own error types
            raise ModelError(f"The file is not a readable .safetensors checkpoint ({err}).") from err
    else:
        try:
            state = torch.load(io.BytesIO(data) if isinstance(data, bytes) else data,
                               map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise ModelError("The checkpoint contains Python objects other than tensors, so it was refused "
                             "(it could run code); save model.state_dict() or a .safetensors file instead.") from err
        except Exception as err:  # on garbage the restricted unpickler raises IndexError, KeyError, ...
            raise ModelError("The file is not a readable PyTorch checkpoint; save it with "
                             "torch.save(model.state_dict(), path) or as .safetensors.") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # the common {"state_dict": ..., "epoch": ...} wrapping
    if (not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values())
            or not all(isinstance(k, str) for k in state)):  # {0: tensor} unpickles fine, but is no state_dict
        raise ModelError("The checkpoint is not a state_dict (a mapping of names to tensors).")
    return {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel's prefix


def read_labels(source) -> list[str]:
    """Class names, one a line, from a list, a path, bytes or an uploaded text file."""
    if isinstance(source, (list, tuple)):
        return [str(s) for s in source]
    _, data = _open(source)
    if isinstance(data, str):
        with open(data, "rb") as f:
            data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ModelError("The labels file is not UTF-8 text with one class name a line.") from err
    return [line.strip() for line in text.splitlines() if line.strip()]


def class_names(names: list[str] | None, n: int, what: str) -> list[str]:
    """A labels file's names checked against the n classes of the `what` (checkpoint, network);
    without one, `class 0 ... class n-1`."""
    if names is not None and len(names) != n:
        raise ModelError(f"The labels file has {len(names)} names but the {what} has {n} classes.")
    return names or [f"class {i}" for i in range(n)]


def load_checkpoint(source, fam: Family, labels=None, device=None) -> Model:
    """A network of family `fam` with a person's weights (a path, bytes or an upload) and labels."""
    state = load_state_dict(source)
    names = read_labels(labels) if labels is not None else None
    if fam.classifier not in state:
        raise ModelError(f"The checkpoint has no {fam.classifier}, so it is not a {fam.name} state_dict.")
    n = state[fam.classifier].shape[0]
    names = class_names(names, n, "checkpoint")
    net = fam.build(n)
    missing, unexpected = _compare(net.state_dict(), state)
    if missing or unexpected:
        listing = "; ".join(f"{what}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
                            for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys)
        raise ModelError(f"The checkpoint does not fit {fam.name} ({listing}).")
    net.load_state_dict(state)
    name = os.path.basename(str(source)) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "")
    return fam.assemble(net, names, device, name=name or "checkpoint")


def _compare(expected: dict, given: dict) -> tuple[list[str], list[str]]:
    missing = [k for k in expected if k not in given]
    # A person's key names go into a one-line message: show a name with a newline (or other control) quoted.
    unexpected = [k if k.isprintable() else repr(k) for k in given if k not in expected]
    unexpected += [f"{k} (shape {tuple(given[k].shape)}, expected {tuple(v.shape)})"
                   for k, v in expected.items() if k in given and given[k].shape != v.shape]
    return missing, unexpected
