"""What one unit detects (issue 12): is a channel's feature visualisation a superstimulus, does the
diversity objective make different pictures, and what does a batch of channels cost?

Over the ImageNet samples with efficientnet_lite0, for `--per-layer` channels sampled at three
depths:
- superstimulus: the channel's feature visualisation, saved as PNG, read back and preprocessed by
  the network's own preprocessing, against every picture of the collection (each picture's mean
  of the channel's map, which is what the objective maximises). Goal: above every picture for at
  least 90% of the channels.
- diversity: four pictures of one unit with and without the diversity objective: their mean
  pairwise cosine similarity (the layer's spatially averaged activations) must drop by >= 0.1,
  each diverse picture keeping >= 80% of the plain visualisation's activation.
- batching: seconds per channel, one batch of the layer's sampled channels against one at a time.

    python bench/units.py [--per-layer 10] [--steps 256] [--size 224] [--layers A,B,C] [--limit 1000]
"""
import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vislib import activations, features, load_image, load_model, units
from vislib.datasets import open_collection
from vislib.runtime import describe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"
LAYERS = "blocks.2.1,blocks.4.0,blocks.5.2"  # three depths of lite0: 28, 14 and 7 px maps


def _round_trip(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return load_image(buffer.getvalue())


def _means(model, pictures, layer):
    """Each picture's spatially averaged activations at the layer, after the network's preprocessing."""
    x = torch.stack([model.preprocess(p) for p in pictures])
    _, seen = activations.capture(model, x, [layer])
    return seen[layer].mean((2, 3)).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--layers", default=LAYERS)
    p.add_argument("--per-layer", type=int, default=10)
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--diversity-channels", type=int, default=3, help="channels per layer for the diversity check")
    args = p.parse_args()
    if not DATA.exists():
        print(f"{DATA} is not here; nothing to measure.")
        return
    os.environ.setdefault("VISLIB_CACHE", tempfile.mkdtemp(prefix="vislib-bench-"))
    model = load_model(args.model)
    collection = open_collection(DATA)
    if args.limit < len(collection):
        collection = collection.subset(range(args.limit))
    print(f"{model.name} on {describe(model.device)}, {len(collection)} pictures, {args.steps} steps at {args.size} px")
    rng = np.random.default_rng(0)
    wins = total = 0
    for layer in args.layers.split(","):
        count = model.layer(layer).channels
        chosen = sorted(rng.choice(count, size=min(args.per_layer, count), replace=False).tolist())
        pictures_best = features.extract(model, collection, layer).max(0)  # each channel's best picture
        started = time.perf_counter()
        images = units.feature_visualizations(model, layer, chosen, steps=args.steps, size=args.size)
        batched = (time.perf_counter() - started) / len(chosen)
        started = time.perf_counter()
        units.feature_visualizations(model, layer, chosen[:1], steps=args.steps, size=args.size)
        alone = time.perf_counter() - started
        seen = _means(model, [_round_trip(im) for im in images], layer)
        beat = [bool(seen[i, c] > pictures_best[c]) for i, c in enumerate(chosen)]
        wins, total = wins + sum(beat), total + len(beat)
        ratio = [float(seen[i, c] / max(pictures_best[c], 1e-9)) for i, c in enumerate(chosen)]
        print(f"{layer}: superstimulus {sum(beat)}/{len(beat)} channels (visualisation / best picture: "
              f"median {np.median(ratio):.2f}, min {min(ratio):.2f}); {batched:.2f} s a channel batched "
              f"({len(chosen)} at once), {alone:.2f} s alone")
        for c in chosen[:args.diversity_channels]:
            plain = units.feature_visualization(model, layer, c, n=4, steps=args.steps, size=args.size)
            diverse = units.feature_visualization(model, layer, c, n=4, steps=args.steps, size=args.size,
                                                  diversity=1.0)
            a, b = _means(model, plain, layer), _means(model, diverse, layer)

            def similarity(m):
                m = m / np.linalg.norm(m, axis=1, keepdims=True)
                s = m @ m.T
                return float((s.sum() - np.trace(s)) / (len(m) * (len(m) - 1)))

            keep = b[:, c] / a[:, c].mean()
            print(f"  channel {c}: similarity {similarity(a):.3f} plain -> {similarity(b):.3f} diverse "
                  f"(drop {similarity(a) - similarity(b):.3f}); diverse activation {keep.min():.0%}-{keep.max():.0%}"
                  f" of plain")
    print(f"superstimulus: {wins}/{total} channels = {wins / max(total, 1):.0%} (goal >= 90%)")


if __name__ == "__main__":
    main()
