"""The command-line side of class images, fooling, DeepDream and inversion (entries of cli.COMMANDS),
and what the texture and style commands share with them.

A person's mistake (a model, layer, channel or class the network does not have, a file that is not
there or not a picture) is one sentence from the engine or from here, raised as CommandError,
ValueError (LayerError is one), ModelError or ImageError; `cli.main` prints it without a traceback.
The engine checks layers, channels and classes before any work, so nothing is checked twice here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vislib.cli.common import OK, CommandError, model_args, open_model, positive, writable_file


def output_args(p: argparse.ArgumentParser, out: str) -> None:
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument("--out", type=Path, default=Path(out), help="the PNG to write (default: %(default)s)")


def _common(p: argparse.ArgumentParser, out: str, steps: int | None = 200) -> None:
    model_args(p)
    if steps is not None:
        p.add_argument("--steps", type=positive, default=steps, help="optimisation steps (default: %(default)s)")
    output_args(p, out)


def load(args):
    """The network, once the output is known to be writable (so that a long run is not wasted)."""
    if not args.out.parent.is_dir():
        raise CommandError(f"The folder {args.out.parent} does not exist.")
    writable_file(args.out, (".png",))
    return open_model(args)


def picture(path: str):
    from vislib.images import load_image
    if Path(path).is_dir():
        raise CommandError(f"{path} is a folder, not a picture.")
    if not Path(path).exists():
        raise CommandError(f"There is no file named {path}.")
    return load_image(path)


def _class(model, text: str) -> int:
    """A class index, or a class name of the network's labels."""
    if text.isdigit() and int(text) < len(model.labels):
        return int(text)
    names = [label.lower() for label in model.labels]
    if text.lower() in names:
        return names.index(text.lower())
    raise CommandError(f"{text!r} is neither a class number (0 to {len(names) - 1}) nor a class name of {model.name}.")


def save(image, out: Path) -> int:
    print(file=sys.stderr)  # ends the progress line
    image.save(out, format="PNG")
    print(out)
    return OK


def printer(step, total, preview=None, **info) -> None:
    """Progress on one line of stderr, rewritten at each step (`save` ends the line)."""
    loss = f"  loss {info['loss']:.4g}" if "loss" in info else ""
    print(f"\rstep {step}/{total}{loss}", end="", file=sys.stderr, flush=True)


def classvis_args(p: argparse.ArgumentParser) -> None:
    from vislib.synthesis import DEFAULT_PRESET, PRESETS
    p.add_argument("target", help="the class: its number or its name (e.g. 1 or goldfish)")
    p.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET, help="(default: %(default)s)")
    p.add_argument("--size", type=positive, help="image size in pixels (default: the network's input size)")
    _common(p, "class.png")


def classvis_run(args) -> int:
    from vislib.synthesis import class_visualization
    model = load(args)
    return save(class_visualization(model, _class(model, args.target), steps=args.steps, seed=args.seed,
                                    preset=args.preset, size=args.size, progress=printer), args.out)


def fool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the picture to change")
    p.add_argument("target", help="the class it should be taken for: number or name (e.g. 9 or ostrich)")
    p.add_argument("--eps", type=float, default=4.0, help="largest change per pixel in grey levels of 255 (default: 4)")
    p.add_argument("--max-steps", type=positive, default=100, help="(default: 100)")
    _common(p, "fooled.png", steps=None)


def fool_run(args) -> int:
    from vislib.synthesis import fooling_image
    if not 0 < args.eps <= 255:
        raise CommandError("--eps is a change in grey levels, more than 0 and at most 255.")
    model = load(args)
    image, info = fooling_image(model, picture(args.image), _class(model, args.target), eps=args.eps / 255,
                                max_steps=args.max_steps, seed=args.seed, progress=printer)
    written = save(image, args.out)
    names = model.labels
    print(f"{'fooled' if info['fooled'] else 'NOT fooled'} after {info['steps']} steps, largest change "
          f"{info['linf'] * 255:.0f}/255: "
          f"{names[info['target']]} {info['target_before']:.3f} -> {info['target_after']:.3f}, "
          f"{names[info['original_class']]} {info['original_before']:.3f} -> {info['original_after']:.3f}")
    return written


def dream_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the picture to dream on")
    p.add_argument("layer", help="a layer name (see the Activation maps page), or layer:channel")
    p.add_argument("--octaves", type=positive, default=4, help="(default: 4)")
    p.add_argument("--steps-per-octave", type=positive, default=10, help="(default: 10)")
    p.add_argument("--size", type=positive, default=512, help="longer side at most this (default: 512)")
    _common(p, "dream.png", steps=None)


def dream_run(args) -> int:
    from vislib.synthesis import deepdream
    model = load(args)
    return save(deepdream(model, picture(args.image), args.layer, octaves=args.octaves,
                          steps_per_octave=args.steps_per_octave, seed=args.seed, size=args.size, progress=printer),
                args.out)


def invert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the picture to reconstruct")
    p.add_argument("layer", help="the layer whose features are matched")
    p.add_argument("--tv", type=float, default=5e-4, help="total-variation weight (default: 5e-4)")
    _common(p, "inversion.png")


def invert_run(args) -> int:
    from vislib.synthesis import invert
    model = load(args)
    return save(invert(model, picture(args.image), args.layer, steps=args.steps, seed=args.seed, tv=args.tv,
                       progress=printer), args.out)
