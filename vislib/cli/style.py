"""The command-line side of texture and style: `texture` and `style` (each an entry of cli.COMMANDS)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vislib.cli.common import OK, CommandError, positive


def _picture(source: str):
    """A built-in sample's name (brick, grass, gravel, mosaic, waves) or an image file."""
    from vislib.images import load_image
    from vislib.synthesis.style import texture_samples
    samples = texture_samples()
    if source in samples:
        return samples[source]()
    if not Path(source).exists():
        raise CommandError(f"{source} is neither a sample ({', '.join(samples)}) nor an image file.")
    return load_image(source)


def _common_args(p: argparse.ArgumentParser, out: str) -> None:
    p.add_argument("--model", default="efficientnet_lite0", help="a model of the zoo (default: %(default)s)")
    p.add_argument("--size", type=positive, default=256, help="shorter side of the result in pixels (default: 256)")
    p.add_argument("--steps", type=positive, default=200, help="optimisation steps in all (default: 200)")
    p.add_argument("--layers", help="style layers, comma-separated (default: the network's preset)")
    p.add_argument("--smoothing", action=argparse.BooleanOptionalAction, default=None,
                   help="Wang et al. 2021's activation smoothing (default: on, except on VGG)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="(default: lbfgs)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument("--out", type=Path, default=Path(out), help="the PNG to write (default: %(default)s)")


def _setup(args: argparse.Namespace):
    from vislib.models.zoo import load_model
    if args.size > 1024:
        raise CommandError("--size may be at most 1024 pixels.")
    model = load_model(args.model)
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    known = {info.name for info in model.layers()}
    unknown = [n for n in layers or [] if n not in known]
    if unknown:
        raise CommandError(f"{model.name} has no layer named {unknown[0]}; see the Activation maps page for names.")

    def progress(step, total, preview=None, **info):
        if step % 10 == 0 or step == total:
            print(f"step {step}/{total}  loss {info.get('loss', float('nan')):.4g}", file=sys.stderr, flush=True)
    return model, layers, progress


def texture_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("sample", help="a sample texture (brick, grass, gravel, mosaic, waves) or an image file")
    _common_args(p, "texture.png")


def texture_run(args: argparse.Namespace) -> int:
    from vislib.synthesis.images import texture
    sample = _picture(args.sample)
    model, layers, progress = _setup(args)
    texture(model, sample, size=args.size, steps=args.steps, layers=layers, seed=args.seed, progress=progress,
            smoothing=args.smoothing, optimizer=args.optimizer).save(args.out)
    print(f"wrote {args.out}")
    return OK


def style_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", help="the photo to paint")
    p.add_argument("style", help="the style picture: a sample (mosaic, waves, brick, ...) or an image file")
    p.add_argument("--style-weight", type=float, help="style against content (default: the preset)")
    p.add_argument("--content-layer", help="(default: the network's preset)")
    _common_args(p, "style.png")


def style_run(args: argparse.Namespace) -> int:
    from vislib.synthesis.images import style_transfer
    content, style = _picture(args.content), _picture(args.style)
    model, layers, progress = _setup(args)
    if args.content_layer and args.content_layer not in {info.name for info in model.layers()}:
        raise CommandError(f"{model.name} has no layer named {args.content_layer}.")
    style_transfer(model, content, style, steps=args.steps, size=args.size, style_weight=args.style_weight,
                   content_layer=args.content_layer, style_layers=layers, seed=args.seed, progress=progress,
                   smoothing=args.smoothing, optimizer=args.optimizer).save(args.out)
    print(f"wrote {args.out}")
    return OK
