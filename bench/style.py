"""Texture synthesis and style transfer, judged by a network they never saw.

    python bench/style.py [--steps 150] [--size 128] [--baseline]

Optimises on efficientnet_lite0 and judges with efficientnet_lite2 (`style.gram_distance`:
Gram matrices of its stages 1-4, squared distance over the target's squared norm, 128 px).
Prints, for the textures (scikit-image's brick, grass and gravel, with `synthesis.texture`'s
defaults, as the page and the command line use them) and the style transfer (the sample cat in
the project's mosaic style): the Gram loss reduction from the start (the smoothed Grams' loss,
from a noise image for the textures; goal >= 20x) and how much closer to the target than the
start the result is (goal: texture >= 3x closer than a noise image, stylised photo >= 1.5x
closer than the photo). `--baseline` also runs plain Gatys (the five early stages, no
smoothing, one scale, noise pixels, L-BFGS) for comparison. On a GPU it also
times 512 px style transfer with VGG19's layers (random weights), 500 steps (goal <= 3 s).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image


import vislib
from vislib import synthesis
from vislib.images import sample_images
from vislib.models import family
from vislib.optvis import to_pil
from vislib.synthesis import style

PLAIN_GATYS = ["bn1", "blocks.1.1", "blocks.2.1", "blocks.3.2", "blocks.4.2"]


def judged(name, judge, model, result, start, target, size, **loss_args):
    before = style.gram_loss(model, start, target, size, **loss_args)
    after = style.gram_loss(model, result, target, size, **loss_args)
    closer = style.gram_distance(judge, start, target) / style.gram_distance(judge, result, target)
    print(f"{name:<38} Gram loss reduced {before / after:6.1f}x   judge: {closer:4.2f}x closer than the start")


def gpu_timing() -> None:
    fam = family("vgg19")
    vgg = fam.assemble(fam.build(1000), [str(i) for i in range(1000)], "cuda")
    content = Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8))
    stylepic = style.texture_samples()["mosaic"]()
    synthesis.style_transfer(vgg, content, stylepic, steps=5, size=512)  # warm-up: kernels, allocator
    torch.cuda.synchronize()
    started = time.perf_counter()
    synthesis.style_transfer(vgg, content, stylepic, steps=500, size=512)
    torch.cuda.synchronize()
    print(f"GPU {torch.cuda.get_device_name()}: 512 px VGG19 style transfer, 500 steps: "
          f"{time.perf_counter() - started:.2f} s (goal <= 3 s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--baseline", action="store_true", help="also run plain Gatys for comparison")
    args = p.parse_args()
    torch.set_flush_denormal(True)
    model, judge = vislib.load_model("efficientnet_lite0"), vislib.load_model("efficientnet_lite2")
    textures = {name: style.texture_samples()[name]() for name in ("brick", "grass", "gravel")}
    mosaic = style.texture_samples()["mosaic"]()
    cat = sample_images()["chelsea (cat)"]()
    start = to_pil(style.noise(args.size))
    size, steps = args.size, args.steps

    for name, sample in textures.items():
        t = time.perf_counter()
        result = synthesis.texture(model, sample, size=size, steps=steps)
        judged(f"texture {name} (ours, {time.perf_counter() - t:.0f} s)", judge, model, result, start, sample, size)
    t = time.perf_counter()
    result = synthesis.style_transfer(model, cat, mosaic, size=size, steps=steps)
    judged(f"style transfer (ours, {time.perf_counter() - t:.0f} s)", judge, model, result, cat, mosaic, size)
    if args.baseline:
        plain = dict(layers=PLAIN_GATYS, smoothing=False)
        for name, sample in textures.items():
            result = synthesis.texture(model, sample, size=size, steps=steps, param="pixels", **plain)
            judged(f"texture {name} (plain Gatys)", judge, model, result, start, sample, size, **plain)
        result = synthesis.style_transfer(model, cat, mosaic, size=size, steps=steps, scales=1,
                                          style_layers=PLAIN_GATYS, smoothing=False)
        judged("style transfer (plain Gatys)", judge, model, result, cat, mosaic, size, **plain)
    if torch.cuda.is_available():
        gpu_timing()


if __name__ == "__main__":
    main()
