"""`vislib COMMAND` (the console script) or `python -m vislib COMMAND`: the engine from the command line.

Each command is one row of COMMANDS: a one-line summary and the module of vislib/cli/ that holds
its two functions, `<prefix>_args(parser)` (adds its arguments) and `<prefix>_run(args) -> exit
status`. Adding a command is writing those two functions and one row. A command's module is
imported only when that command runs (or shows its --help), so `vislib models` does not pay for
the synthesis engine, and one command's missing extra does not break the others.

Exit status (vislib.cli.common): 0 all went well; 1 anything a person can cause - a bad argument,
a model, layer, channel or class the network does not have, a missing or unreadable file, pictures
`predict` could not read (each reported in its place) - with one sentence on stderr (`error: ...`);
130 interrupted. Never a traceback for a person's mistake: a traceback is a bug.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Callable

from vislib.cli.common import FAILED, INTERRUPTED, OK, CommandError


@dataclass(frozen=True)
class Command:
    summary: str
    module: str   # under vislib.cli
    prefix: str   # its functions <prefix>_args and <prefix>_run

    def function(self, kind: str) -> Callable:
        return getattr(importlib.import_module(f"vislib.cli.{self.module}"), f"{self.prefix}_{kind}")


COMMANDS: dict[str, Command] = {
    "models": Command("list the networks and whether each can be loaded now (--all: every architecture by name)",
                      "models", "models"),
    "predict": Command("classify images with an ImageNet (or your own) network", "models", "predict"),
    "train-fashion": Command("train the classroom network fashion_cnn on Fashion-MNIST", "data", "train"),
    "explain": Command("which pixels made the network decide: one attribution map as PNG and .npy",
                       "attribution", "explain"),
    "evaluate": Command("which map to trust: score attribution methods over a collection, as CSV", "evaluate",
                        "evaluate"),
    "patches": Command("find the maximally activating patches of every channel of a layer (locally or on Ray)",
                       "data", "patches"),
    "embed": Command("map features (or a collection's) to 2-D with t-SNE or PCA, as CSV or PNG", "embedding", "embed"),
    "classvis": Command("make an image the network takes for a class (class visualisation)", "synthesis", "classvis"),
    "fool": Command("change a picture invisibly so that the network takes it for another class", "synthesis", "fool"),
    "dream": Command("DeepDream: amplify what a layer sees in a picture", "synthesis", "dream"),
    "invert": Command("reconstruct a picture from one layer's features", "synthesis", "invert"),
    "texture": Command("grow a texture from a sample by matching Gram matrices (Gatys et al. 2015)",
                       "style", "texture"),
    "style": Command("paint a photo in another picture's style (Gatys et al. 2016, smoothing of Wang et al. 2021)",
                     "style", "style"),
    "atlas": Command("build (or resume) a network's atlas of what its units detect, locally or on Ray, or show one",
                     "atlas", "atlas"),
    "anatomy": Command("a network's layers: output shapes, parameters, multiply-adds, strides, receptive fields",
                       "anatomy", "anatomy"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and status 1, without argparse's usage block
        raise CommandError(f"{self.prog}: {message} (see --help).")


def build_parser(prog: str = "vislib", only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, just that command's arguments are added (the others
    are listed with their summaries, their modules not imported)."""
    parser = _Parser(prog=prog, description="Look inside convolutional networks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name, command in COMMANDS.items():
        description = command.summary[0].upper() + command.summary[1:] + "."
        p = sub.add_parser(name, help=command.summary, description=description)
        if only is None or name == only:
            command.function("args")(p)
    return parser


def _prog() -> str:
    """How the person called us, for messages: `vislib` or `python -m vislib`."""
    return "python -m vislib" if os.path.basename(sys.argv[0]) == "__main__.py" else "vislib"


def _say(message: object) -> None:
    """`error: <message>` as one line on stderr, ending in a full stop."""
    text = re.sub(r"\s+", " ", str(message)).strip() or "Something went wrong"
    print(f"error: {text}{'' if text[-1] in '.?!' else '.'}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    # Imported here, not at the top: `import vislib.cli` stays cheap and free of cycles.
    import torch

    from vislib.images import ImageError
    from vislib.models import LayerError, ModelError
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        chosen = next((a for a in argv if not a.startswith("-")), "")  # the top level has no options but -h
        args = build_parser(_prog(), only=chosen).parse_args(argv)
        return COMMANDS[args.command].function("run")(args)
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else OK
    except KeyboardInterrupt:
        return INTERRUPTED
    except torch.OutOfMemoryError:
        _say("The device ran out of memory; try a smaller --batch-size, a smaller --size or --device cpu.")
    except BrokenPipeError:  # e.g. `... | head`: the reader has gone, which is not an error
        # Point stdout at devnull so that Python's flush at exit does not complain a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except (CommandError, ModelError, ImageError, LayerError, ValueError) as err:  # LayerError: a KeyError too
        _say(err)
    except MemoryError:
        _say("The computer ran out of memory; try a smaller --batch-size or --size.")
    except ModuleNotFoundError as err:  # an extra that is not installed (e.g. vislib[distributed])
        if (err.name or "vislib").startswith("vislib"):
            raise  # our own module missing is a bug
        _say(f"This needs the Python package {err.name}, which is not installed")
    except OSError as err:
        why = (err.strerror or str(err)).rstrip(".")
        _say(f"Could not use {err.filename} ({why.lower()})" if err.filename else why)
    return FAILED
