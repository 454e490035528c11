"""The command-line side of attribution (an entry of cli.COMMANDS): `python -m vislib explain`
writes one map of one picture as an overlay PNG and the raw map as .npy. Every method's parameters
come from the registry (`--param NAME=VALUE`, typed and checked there)."""
from __future__ import annotations

import argparse
import difflib
from pathlib import Path

import numpy as np

from vislib import render
from vislib.attribution import METHODS, attribute, colour_scale, prepare
from vislib.cli.common import OK, CommandError, model_args, open_model
from vislib.images import load_image
from vislib.models import Model


def _parameters() -> str:
    """The methods and their parameters, for --help: read from the registry."""
    lines = ["methods and their parameters (--param NAME=VALUE, repeatable):"]
    for name, method in METHODS.items():
        lines.append(f"  {name} ({method.label})" + ("" if method.params else ": no parameters"))
        lines += [f"      {p.name}: {p.help} ({'one of ' + ', '.join(p.choices) if p.choices else p.kind}"
                  + ("" if p.default is None else f"; default {p.default}") + ")" for p in method.params]
    return "\n".join(lines)


def explain_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _parameters()
    p.add_argument("image", metavar="IMAGE", help="the picture to explain")
    p.add_argument("--method", required=True, choices=list(METHODS), metavar="M",
                   help=f"one of: {', '.join(METHODS)}")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter of the method, e.g. --param window=32 --param stride=16 (see below)")
    model_args(p)
    p.add_argument("--target", metavar="CLASS", help="a class index or name (default: the top prediction)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for IMAGE-METHOD-CLASS.png and .npy")
    p.add_argument("--opacity", type=float, default=0.5, help="of the map over the picture (default: 0.5)")


def class_index(model: Model, text: str | None) -> int | None:
    """A class given as an index or a name (case-insensitive); ValueError with suggestions otherwise."""
    if text is None:
        return None
    if text.strip().lstrip("-").isdigit():
        return int(text)  # attribution checks the range
    lowered = [label.lower() for label in model.labels]
    if text.strip().lower() in lowered:
        return lowered.index(text.strip().lower())
    close = difflib.get_close_matches(text.lower(), lowered, n=3)
    hint = f" Did you mean: {', '.join(model.labels[lowered.index(c)] for c in close)}?" if close else ""
    raise ValueError(f"{model.name} has no class named {text!r}.{hint}")


def explain_run(args: argparse.Namespace) -> int:
    if not 0 <= args.opacity <= 1:
        raise CommandError("--opacity must be between 0 and 1.")
    params = METHODS[args.method].parse(args.param)  # a bad parameter is refused before anything loads
    picture = load_image(args.image)  # a bad picture is refused before the network loads
    model = open_model(args)
    x = model.preprocess(picture)[None]
    _, target = prepare(model, x, class_index(model, args.target))
    amap = attribute(model, x, args.method, target, **params)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(args.image).stem}-{args.method}-{model.labels[target]}".replace(" ", "_").replace("/", "_")
    vmin, vmax, cmap, _ = colour_scale([amap])
    overlay = render.overlay(model.to_image(x[0]), amap, args.opacity, cmap, vmin, vmax)
    overlay.save(out / f"{stem}.png")
    np.save(out / f"{stem}.npy", amap.numpy())
    print(f"{args.method} for {model.labels[target]} ({target}): {out / stem}.png, {out / stem}.npy")
    return OK
