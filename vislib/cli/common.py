"""What every command shares: exit statuses, the one error type, argument types, image paths, and the
options that choose a network (`model_args`) and open it (`open_model`)."""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from vislib.images import SUPPORTED_TYPES

# 0: all went well. 1: anything a person can cause went wrong - a bad argument, a model, layer,
# channel or class the network does not have, a missing or unreadable file, some pictures of
# `predict` that could not be read (each reported in its place) - always as one sentence, never a
# traceback. 130: interrupted (Ctrl-C). A traceback is a bug.
OK, FAILED, INTERRUPTED = 0, 1, 130


class CommandError(Exception):
    """Stops a command; the message is the one sentence printed on stderr (exit status 1)."""


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def triple(text: str) -> tuple[float, float, float]:
    """R,G,B: three numbers separated by commas (a picture's per-channel mean or standard deviation)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected three numbers separated by commas (R,G,B), got {text!r}")
    return values


def device(text: str) -> torch.device:
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device name PyTorch knows (try cpu or cuda)") from None
    present = {"cpu": True, "cuda": torch.cuda.is_available(),
               "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not present.get(device.type, True):
        raise argparse.ArgumentTypeError(f"there is no {device.type} device on this machine")
    return device


def expand_images(paths: list[str]) -> Iterator[str]:
    """The given paths, with each folder replaced by its image files (sorted by name)."""
    suffixes = {f".{t}" for t in SUPPORTED_TYPES}
    for path in paths:
        if os.path.isdir(path):
            found = sorted(str(f) for f in Path(path).iterdir() if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise CommandError(f"The folder {path} contains no image files.")
            yield from found
        elif not os.path.exists(path):
            raise CommandError(f"There is no file or folder named {path}.")
        else:
            yield path


def writable_file(path: Path, suffixes: tuple[str, ...] = ()) -> Path:
    """`path` if a file can be written there (its folder exists or can be made), else CommandError:
    checked before a long run, so that the run is not wasted."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise CommandError(f"{path} should end in {' or '.join(suffixes)}.")
    if path.is_dir():
        raise CommandError(f"{path} is a folder; give a file name.")
    folder = path.parent
    while not folder.exists():  # the first existing folder above: save() makes the rest
        folder = folder.parent
    if not folder.is_dir():
        raise CommandError(f"Cannot write {path}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"Cannot write {path}: no permission to write in {folder}.")
    return path


# ---------------------------------------------------------------- the network

def model_args(p: argparse.ArgumentParser, what: str = "the network") -> None:
    """--model and the options that go with a person's own file, the same for every command that
    takes a network: --arch and --labels for a checkpoint, --input-size, --mean, --std (and
    --labels) for a whole-network file. `what` starts --model's help (e.g. "network for a collection")."""
    from vislib.models import DEFAULT_MODEL
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME_OR_PATH",
                   help=f"{what}: a model of the zoo (see `models`), any torchvision architecture, timm:NAME "
                   "(see `models --all`), a checkpoint file (with --arch) or a whole-network file .pt2 or .onnx "
                   "(default: %(default)s)")
    own = p.add_argument_group("your own network (with --model FILE)")
    own.add_argument("--arch", metavar="NAME", help="the architecture of a checkpoint, e.g. resnet18 or "
                     "timm:resnet26d (see `models --all`)")
    own.add_argument("--labels", metavar="FILE", help="a text file of class names, one a line")
    own.add_argument("--input-size", type=positive, metavar="N",
                     help="the picture size in pixels a whole-network file expects")
    own.add_argument("--mean", type=triple, metavar="R,G,B",
                     help="a whole-network file's per-channel mean, for pixels from 0 to 1")
    own.add_argument("--std", type=triple, metavar="R,G,B",
                     help="a whole-network file's per-channel standard deviation, for pixels from 0 to 1")


def open_model(args: argparse.Namespace, device=None):
    """The network `model_args` chose. A model, file or option that does not fit is one sentence:
    ModelError and OSError from the loader pass on to `cli.main`; anything else a person's file
    makes a loader raise becomes a CommandError."""
    from vislib.models import ModelError, load_model
    from vislib.models.registry import WHOLE_NETWORK_FILES
    source = args.model
    is_file = os.path.exists(source)
    whole = is_file and source.lower().endswith(WHOLE_NETWORK_FILES) and not args.arch
    if is_file and os.path.isdir(source):
        raise CommandError(f"{source} is a folder; --model takes a network's name or a file.")
    if not is_file and (args.arch or args.labels):
        raise CommandError(f"--arch and --labels go with a checkpoint file, and there is no file named {source} "
                           "(a network of the zoo, torchvision or timm has its own architecture and labels).")
    extra = [flag for flag, value in (("--input-size", args.input_size), ("--mean", args.mean), ("--std", args.std))
             if value is not None]
    if extra and not whole:
        raise CommandError(f"{', '.join(extra)} {'goes' if len(extra) == 1 else 'go'} with a whole-network file "
                           f"(.pt2 or .onnx, without --arch); {source} is not one.")
    if args.mean is not None and not all(0 <= v <= 1 for v in args.mean):
        raise CommandError(f"--mean is for pixels from 0 to 1 (ImageNet's is 0.485,0.456,0.406), "
                           f"got {','.join(f'{v:g}' for v in args.mean)}.")
    if args.std is not None and not all(v > 0 for v in args.std):
        raise CommandError(f"--std must be more than 0 in every channel, got {','.join(f'{v:g}' for v in args.std)}.")
    try:
        return load_model(source, device=device, arch=args.arch, labels=args.labels, input_size=args.input_size,
                          mean=args.mean, std=args.std)
    except (ModelError, OSError):
        raise
    except Exception as err:  # a person's file can break a loader in ways nobody listed
        if isinstance(err, ModuleNotFoundError) and not (err.name or "vislib").startswith("vislib"):
            raise  # an extra that is not installed (onnxruntime, say): cli.main names the package
        raise CommandError(f"The model {source} could not be loaded ({type(err).__name__}: {err}).") from err
