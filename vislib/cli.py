"""`python -m vislib COMMAND`: the engine from the command line.

Each command is one row of COMMANDS: a one-line summary, a function that adds its arguments to
a sub-parser, and a function that runs it and returns the exit status. Adding a command is
writing those two functions and one row.

Exit status: 0 all went well; 1 some images could not be read (each is reported in its place);
2 nothing could be done (bad arguments, a model that cannot be loaded, a missing file),
with one sentence on stderr; 130 interrupted. Never a traceback for a person's mistake.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .checkpoints import ModelError
from .images import SUPPORTED_TYPES, ImageError
from .models import DEFAULT_MODEL, availability, list_models, load_model
from .predict import classify

OK, IMAGE_FAILED, USAGE = 0, 1, 2


class CommandError(Exception):
    """Stops a command; the message is the one sentence printed on stderr (exit status 2)."""


# ---------------------------------------------------------------- models

def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per line: name, state, detail")


def _models_run(args: argparse.Namespace) -> int:
    rows = [(name, availability(name)) for name in list_models()]
    width = max((len(n) for n, _ in rows), default=0)
    for name, a in rows:
        if args.json:
            print(json.dumps({"name": name, "state": a.state, "detail": a.detail}))
        else:
            print(f"{name:<{width}}  {a.state:<11}  {a.detail}")
    return OK


# ---------------------------------------------------------------- predict

def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders of them")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="a model of the zoo (see `models`) or a checkpoint file (default: %(default)s)")
    p.add_argument("--top", type=_positive, default=5, metavar="K", help="how many classes to show (default: 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per image and line")
    p.add_argument("--batch-size", type=_positive, default=32, metavar="N", help="images per forward pass (default: 32)")
    p.add_argument("--device", type=_device, help="cpu, cuda, mps, ... (default: $VISLIB_DEVICE, else the best one present)")
    p.add_argument("--arch", help="the architecture of a checkpoint given as --model")
    p.add_argument("--labels", help="a text file of class names, one a line, for a checkpoint")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _device(text: str) -> torch.device:
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


def _predict_run(args: argparse.Namespace) -> int:
    images = list(expand_images(args.images))  # every path is checked before the model loads
    try:
        model = load_model(args.model, device=args.device, arch=args.arch, labels=args.labels)
    except (ModelError, OSError):
        raise
    except Exception as err:  # a person's file can break a loader in ways nobody listed
        raise CommandError(f"The model {args.model} could not be loaded ({type(err).__name__}: {err}).") from err
    status = OK
    for path, result in classify(model, images, top=args.top, batch_size=args.batch_size):
        if isinstance(result, str):
            status = IMAGE_FAILED
            line = json.dumps({"path": path, "error": result}) if args.json else f"{path}\n  error: {result}"
        elif args.json:
            line = json.dumps({"path": path, "top": [{"index": i, "label": label, "prob": round(p, 6)}
                                                     for i, label, p in result]})
        else:
            line = "\n".join([path, *(f"  {p:.3f}  {label} ({i})" for i, label, p in result)])
        print(line, flush=True)  # flushed per image, so a pipe sees results as they come
    return status


# ---------------------------------------------------------------- the table and main

from . import attribution_commands, dataset_commands, embedding_commands, style_commands, synthesis_commands  # noqa: E402 - here, once OK, CommandError and _positive exist for them

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "models": ("list the networks and whether each can be loaded now", _models_args, _models_run),
    "predict": ("classify images with an ImageNet (or your own) network", _predict_args, _predict_run),
    "train-fashion": ("train the classroom network fashion_cnn on Fashion-MNIST", dataset_commands.train_args,
                      dataset_commands.train_run),
    "explain": ("which pixels made the network decide: one attribution map as PNG and .npy",
                attribution_commands.explain_args, attribution_commands.explain_run),
    "patches": ("find the maximally activating patches of every channel of a layer (shardable)",
                dataset_commands.patches_args, dataset_commands.patches_run),
    "embed": ("map features (or a collection's) to 2-D with t-SNE or PCA, as CSV or PNG",
              embedding_commands.embed_args, embedding_commands.embed_run),
    "classvis": ("make an image the network takes for a class (class visualisation)",
                 synthesis_commands.classvis_args, synthesis_commands.classvis_run),
    "fool": ("change a picture invisibly so that the network takes it for another class",
             synthesis_commands.fool_args, synthesis_commands.fool_run),
    "dream": ("DeepDream: amplify what a layer sees in a picture", synthesis_commands.dream_args,
              synthesis_commands.dream_run),
    "invert": ("reconstruct a picture from one layer's features", synthesis_commands.invert_args,
               synthesis_commands.invert_run),
    "texture": ("grow a texture from a sample by matching Gram matrices (Gatys et al. 2015)",
                style_commands.texture_args, style_commands.texture_run),
    "style": ("paint a photo in another picture's style (Gatys et al. 2016, smoothing of Wang et al. 2021)",
              style_commands.style_args, style_commands.style_run),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and status 2, without argparse's usage block
        raise CommandError(f"{self.prog}: {message} (see --help).")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vislib", description="Look inside convolutional networks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name, (summary, setup, run) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        setup(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else OK
    except KeyboardInterrupt:
        return 130
    except torch.OutOfMemoryError:
        print("error: The device ran out of memory; try a smaller --batch-size or --device cpu.", file=sys.stderr)
        return USAGE
    except BrokenPipeError:  # e.g. `... | head`: the reader has gone, which is not an error
        # Point stdout at devnull so that Python's flush at exit does not complain a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except (CommandError, ModelError, ImageError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE
    except MemoryError:
        print("error: The computer ran out of memory; try a smaller --batch-size.", file=sys.stderr)
        return USAGE
    except OSError as err:
        why = (err.strerror or str(err)).rstrip(".")
        what = f"Could not use {err.filename} ({why.lower()})" if err.filename else why
        print(f"error: {what}.", file=sys.stderr)
        return USAGE
