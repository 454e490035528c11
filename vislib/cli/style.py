"""The command-line side of texture and style: `texture` and `style` (each an entry of cli.COMMANDS)."""
from __future__ import annotations

import argparse
from pathlib import Path

from vislib.cli.common import CommandError, model_args, positive
from vislib.cli.synthesis import load, output_args, picture, printer, save


def _picture(source: str):
    """A built-in sample's name (brick, grass, gravel, mosaic, waves) or an image file."""
    from vislib.synthesis.samples import texture_samples
    samples = texture_samples()
    if source in samples:
        return samples[source]()
    if not Path(source).exists():
        raise CommandError(f"{source} is neither a sample ({', '.join(samples)}) nor an image file.")
    return picture(source)


def _common_args(p: argparse.ArgumentParser, out: str) -> None:
    model_args(p)
    p.add_argument("--size", type=positive, default=256, help="shorter side of the result in pixels (default: 256)")
    p.add_argument("--steps", type=positive, default=200, help="optimisation steps in all (default: 200)")
    p.add_argument("--layers", help="style layers, comma-separated (default: the network's preset)")
    p.add_argument("--smoothing", action=argparse.BooleanOptionalAction, default=None,
                   help="Wang et al. 2021's activation smoothing (default: on, except on VGG)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="(default: lbfgs)")
    output_args(p, out)


def _settings(args: argparse.Namespace) -> tuple[dict, list[str] | None]:
    """What both commands pass on, and the style layers (the engine checks them before any work)."""
    if args.size > 1024:
        raise CommandError("--size may be at most 1024 pixels.")
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    return dict(size=args.size, steps=args.steps, seed=args.seed, smoothing=args.smoothing, optimizer=args.optimizer,
                progress=printer), layers


def texture_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("sample", help="a sample texture (brick, grass, gravel, mosaic, waves) or an image file")
    _common_args(p, "texture.png")


def texture_run(args: argparse.Namespace) -> int:
    from vislib.synthesis import texture
    (settings, layers), sample = _settings(args), _picture(args.sample)
    return save(texture(load(args), sample, layers=layers, **settings), args.out)


def style_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", help="the photo to paint")
    p.add_argument("style", help="the style picture: a sample (mosaic, waves, brick, ...) or an image file")
    p.add_argument("--style-weight", type=float, help="style against content (default: the preset)")
    p.add_argument("--content-layer", help="(default: the network's preset)")
    _common_args(p, "style.png")


def style_run(args: argparse.Namespace) -> int:
    from vislib.synthesis import style_transfer
    (settings, layers), content, style = _settings(args), _picture(args.content), _picture(args.style)
    return save(style_transfer(load(args), content, style, style_weight=args.style_weight,
                               content_layer=args.content_layer, style_layers=layers, **settings), args.out)
