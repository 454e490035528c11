"""Segmentation from a map: an ImageNet sample, scaled down, pasted onto a grey canvas; does
`vislib.attribution.segment` (Grad-CAM seeding GrabCut) cut out the pasted picture?

    python bench/segment.py [--placements 10] [--seed 0] [--method gradcam] [--quick]

Per placement: the inside share (mask pixels inside the pasted picture / mask pixels) and the
coverage (mask pixels inside / the pasted picture's pixels). A placement passes with an inside
share of at least 90% and a coverage of at least 1/5; the goal is 8 of 10 on efficientnet_lite0.
Each picture is explained for its own ImageNet class. Skips cleanly when ../shared/data is absent.
"""
import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.transforms import functional as TF

from vislib import attribution, load_image, load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--canvas", type=int, default=224, help="the canvas's side in pixels (default 224)")
    parser.add_argument("--object", type=int, default=112, help="the pasted picture's side (default 112)")
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="3 placements")
    args = parser.parse_args()
    if not (DATA / "imagenet-samples").is_dir():
        print(f"skipped: {DATA} is not here (the ImageNet samples live outside the repository)")
        return 0
    n = 3 if args.quick else args.placements
    model = load_model("efficientnet_lite0", device=args.device)
    wnids = (DATA / "imagenet-wnids.txt").read_text().split()
    rng = random.Random(args.seed)
    files = rng.sample(sorted((DATA / "imagenet-samples").iterdir()), n)
    passed, seconds = 0, 0.0
    print(f"{'sample':32s} {'box (x0,y0)':>12s} {'inside':>7s} {'coverage':>8s}  pass")
    for f in files:
        photo = TF.center_crop(TF.resize(load_image(f), args.object), args.object)
        x0, y0 = rng.randrange(args.canvas - args.object + 1), rng.randrange(args.canvas - args.object + 1)
        canvas = Image.new("RGB", (args.canvas, args.canvas), (128, 128, 128))
        canvas.paste(photo, (x0, y0))
        x = TF.normalize(TF.to_tensor(canvas), model.mean, model.std)[None]
        started = time.perf_counter()
        mask = attribution.segment(model, x, wnids.index(f.name.split("_")[0]), method=args.method)
        seconds += time.perf_counter() - started
        box = np.zeros_like(mask)
        box[y0:y0 + args.object, x0:x0 + args.object] = True
        inside = (mask & box).sum() / max(1, mask.sum())
        coverage = (mask & box).sum() / box.sum()
        ok = inside >= 0.9 and coverage >= 0.2
        passed += ok
        print(f"{f.stem[:32]:32s} {f'({x0},{y0})':>12s} {inside:7.1%} {coverage:8.1%}  {'yes' if ok else 'NO'}")
    goal = int(np.ceil(0.8 * n))
    print(f"passed {passed} of {n} (goal: at least {goal}); {seconds / n:.2f} s per segmentation")
    return 0 if passed >= goal else 1


if __name__ == "__main__":
    sys.exit(main())
