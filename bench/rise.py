"""RISE on efficientnet_lite0: seconds for the paper's 4000 masks at 224 px (goal: at most 60 s on
the development CPU), through `vislib.attribution.rise` (batched, through the device queue).

    python bench/rise.py [--masks 4000] [--size 224] [--batch-size N] [--device cpu] [--quick]

There is no reference library to compare with (Captum and pytorch-grad-cam have no RISE); the
script prints the time, masks per second, and checks that the same seed gives the same map.
--quick runs 256 masks and extrapolates to 4000.
"""
import argparse
import sys
import time

import torch

from vislib import attribution, load_model
from vislib.images import sample_images

GOAL_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=4000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=None, help="masked copies per pass (default: vislib's)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="256 masks, extrapolated to 4000")
    args = parser.parse_args()
    masks = 256 if args.quick else args.masks
    model = load_model("efficientnet_lite0", device=args.device)
    x = model.preprocess(sample_images()["chelsea (cat)"]())[None]
    x = torch.nn.functional.interpolate(x, size=(args.size, args.size), mode="bilinear", align_corners=False)
    attribution.rise(model, x, 281, masks=8, batch_size=8)  # warm-up
    started = time.perf_counter()
    amap = attribution.rise(model, x, 281, masks=masks, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    again = attribution.rise(model, x, 281, masks=min(masks, 64), batch_size=args.batch_size)
    same = torch.equal(again, attribution.rise(model, x, 281, masks=min(masks, 64), batch_size=args.batch_size))
    at_4000 = seconds * 4000 / masks
    row, col = divmod(int(amap.argmax()), args.size)
    print(f"efficientnet_lite0 on {model.device}, {args.size} px, {masks} masks: {seconds:.1f} s "
          f"({masks / seconds:.0f} masks/s); 4000 masks: {at_4000:.1f} s (goal <= {GOAL_SECONDS:.0f} s)")
    print(f"map: max {float(amap.max()):.4f} at (row {row}, col {col}), mean {float(amap.mean()):.4f}; "
          f"same seed, same map: {same}")
    return 0 if same and at_4000 <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
