"""Fooling images: target reached after the PNG round trip, L-infinity <= 4/255, on random pairs.

20 random (image, target) pairs from ../shared/data/imagenet-samples; each fooling picture is
saved as PNG, read back with vislib.load_image and classified with model.top_k (preprocess
included), as a person would. Goal: >= 95% fooled.

    python bench/fooling.py [--pairs 20] [--model efficientnet_lite0] [--seed 0]
"""
import argparse
import random
import tempfile
import time
from pathlib import Path


import vislib
from vislib import synthesis

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    model = vislib.load_model(args.model)
    files = sorted(DATA.glob("*.jpg"))
    rng = random.Random(args.seed)
    fooled, worst, steps, start = 0, 0.0, [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            path, target = rng.choice(files), rng.randrange(len(model.labels))
            picture, info = synthesis.fooling_image(model, vislib.load_image(str(path)), target)
            out = Path(tmp) / f"{i}.png"
            picture.save(out)
            top = model.top_k(vislib.load_image(str(out)), 1)[0][0]
            ok = top == target and info["linf"] <= 4 / 255 + 1e-6
            fooled += ok
            worst = max(worst, info["linf"])
            steps.append(info["steps"])
            print(f"{path.name:40s} -> {model.labels[target]:25s} {'fooled' if ok else 'NOT fooled'} "
                  f"linf {info['linf'] * 255:.0f}/255 steps {info['steps']} p {info['target_after']:.3f}", flush=True)
    print(f"fooled after the PNG round trip: {fooled}/{args.pairs} ({100 * fooled / args.pairs:.0f}%, goal >= 95%), "
          f"largest linf {worst * 255:.0f}/255, median steps {sorted(steps)[len(steps) // 2]}, "
          f"{(time.perf_counter() - start) / args.pairs:.1f} s per pair")


if __name__ == "__main__":
    main()
