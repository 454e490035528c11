"""Class images at 224 px on efficientnet_lite0: target probability, time, and transfer to lite2.

For random classes: the "Robust" preset's image, 200 steps; its probability for the target on
lite0 (goal >= 0.9), the seconds it took (goal <= 60 on the project's CPU), and whether the
target is in the top-5 of efficientnet_lite2, a network the optimisation never saw (goal: at least half the classes).

    python bench/classvis.py [--classes 20] [--steps 200] [--preset Robust]
"""
import argparse
import random
import time


import vislib
from vislib import synthesis


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--preset", default="Robust")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    lite0, lite2 = vislib.load_model("efficientnet_lite0"), vislib.load_model("efficientnet_lite2")
    targets = random.Random(args.seed).sample(range(1000), args.classes)
    reached, transfer, seconds = 0, 0, []
    for target in targets:
        start = time.perf_counter()
        picture = synthesis.class_visualization(lite0, target, steps=args.steps, preset=args.preset, size=args.size)
        seconds.append(time.perf_counter() - start)
        prob = synthesis.top_classes(lite0, picture, 1000)
        p0 = next(p for i, _, p in prob if i == target)
        top5 = [i for i, _, _ in lite2.top_k(picture, 5)]  # lite2's own preprocessing (resize to 260)
        reached += p0 >= 0.9
        transfer += target in top5
        in_top5 = "yes" if target in top5 else "no "
        print(f"{target:4d} {lite0.labels[target]:25s} p(lite0) {p0:.3f}  lite2 top-5 {in_top5}"
              f"  {seconds[-1]:.0f} s", flush=True)
    n = len(targets)
    print(f"{args.preset}, {args.size}px, {args.steps} steps: p >= 0.9 for {reached}/{n}; in lite2's top-5 for "
          f"{transfer}/{n} (goal >= {n / 2:.0f}); median {sorted(seconds)[n // 2]:.0f} s per class (goal <= 60 s)")


if __name__ == "__main__":
    main()
