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
import os
import sys
from collections.abc import Callable

import torch

from vislib.cli import attribution as attribution_commands
from vislib.cli import data as dataset_commands
from vislib.cli import embedding as embedding_commands
from vislib.cli import models as model_commands
from vislib.cli import style as style_commands
from vislib.cli import synthesis as synthesis_commands
from vislib.cli.common import OK, USAGE, CommandError
from vislib.images import ImageError
from vislib.models.checkpoints import ModelError

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "models": ("list the networks and whether each can be loaded now", model_commands.models_args, model_commands.models_run),
    "predict": ("classify images with an ImageNet (or your own) network", model_commands.predict_args, model_commands.predict_run),
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
