"""What every command shares: exit statuses, the one error type, argument types, image paths."""
from __future__ import annotations

import argparse
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
