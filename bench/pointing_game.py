"""Pointing game: two ImageNet samples side by side on a grey canvas; for each object's own class,
does the map's maximum fall on that object? Ours and Captum's Grad-CAM and occlusion, in one process.

    python bench/pointing_game.py [--placements 20] [--seed 0] [--window 32 --stride 16]

Pairs are drawn (fixed seed) from samples that efficientnet_lite0 classifies correctly on their own;
each keeps its own scale (224 px), so the canvas is 480 x 256.
A placement is a hit for a method when both objects' maps peak on their own object (goal: Grad-CAM
and occlusion at least 18 of 20). Counted strictly (the peak pixel inside the object's square) and
with the pointing game's usual 15 px tolerance (Zhang et al. 2016, "Top-down neural attention by
excitation backprop"): occlusion's map averages the windows over each pixel, and pixels just
outside an object are covered by fewer windows, so its peak can sit a few pixels off the object.
The objects are 16 px apart, so the tolerance never reaches the other one. Skips cleanly when
../shared/data is absent.
"""
import argparse
import random
import sys
from pathlib import Path


import torch.nn.functional as F
from captum.attr import LayerGradCam, Occlusion
from PIL import Image
from torchvision.transforms import functional as TF

from vislib import attribution, load_image, load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZE = 224
MARGIN = 16
TOLERANCE = 15  # pixels, as the pointing game of Zhang et al. 2016


def canvas(left: Image.Image, right: Image.Image):
    """Each picture as the network sees it alone (224 px, centre square), side by side on a grey
    canvas with a 16 px margin, 480 x 256 (the networks are convolutional: any size goes in);
    their boxes (x0, y0, x1, y1)."""
    out = Image.new("RGB", (2 * SIZE + 3 * MARGIN, SIZE + 2 * MARGIN), (128, 128, 128))
    boxes = []
    for i, image in enumerate((left, right)):
        x0 = MARGIN + i * (SIZE + MARGIN)
        out.paste(TF.center_crop(TF.resize(image, SIZE), SIZE), (x0, MARGIN))
        boxes.append((x0, MARGIN, x0 + SIZE, MARGIN + SIZE))
    return out, boxes


def correct_samples(model, files, want: int, rng) -> list[tuple[Path, int]]:
    wnids = (DATA / "imagenet-wnids.txt").read_text().split()
    files = rng.sample(files, len(files))
    picked = []
    for f in files:
        cls = wnids.index(f.name.split("_")[0])
        if model.top_k(load_image(f), 1)[0][0] == cls:
            picked.append((f, cls))
            if len(picked) == want:
                break
    return picked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=32, help="occlusion window (default: 32)")
    parser.add_argument("--stride", type=int, default=16, help="occlusion stride (default: 16)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--methods", default="", help="only these (comma-separated), e.g. occlusion,gradcam")
    parser.add_argument("--captum-occlusion", action="store_true",
                        help="also Captum's Occlusion (slow on a CPU: ours equals it, see tests/test_occlusion.py)")
    args = parser.parse_args()
    if not (DATA / "imagenet-samples").is_dir():
        print(f"skipped: {DATA} is not here (the ImageNet samples live outside the repository)")
        return 0
    model = load_model("efficientnet_lite0", device=args.device)
    rng = random.Random(args.seed)
    samples = correct_samples(model, sorted((DATA / "imagenet-samples").iterdir()), 2 * args.placements, rng)
    layer = model.module(attribution.gradcam_layer(model))
    occ = {"window": args.window, "stride": args.stride}

    def captum_gradcam(x, t):
        with model.running() as net:
            cam = LayerGradCam(net, layer).attribute(x, target=t, relu_attributions=True)
        return F.interpolate(cam, size=x.shape[2:], mode="bilinear")[0, 0]

    def captum_occlusion(x, t):
        with model.running() as net:
            return Occlusion(net).attribute(x, target=t, sliding_window_shapes=(3, args.window, args.window),
                                            strides=(3, args.stride, args.stride), baselines=0.0,
                                            perturbations_per_eval=16)[0].mean(0)

    methods = {m: (lambda x, t, m=m: attribution.attribute(model, x, m, t, **(occ if m == "occlusion" else {})))
               for m in attribution.METHODS}  # the registry's every method
    methods["captum_gradcam"] = captum_gradcam
    if args.captum_occlusion:
        methods["captum_occlusion"] = captum_occlusion
    if args.methods:
        methods = {m: fn for m, fn in methods.items() if m in args.methods.split(",")}
    both = {m: 0 for m in methods}
    single = {m: 0 for m in methods}
    near = {m: 0 for m in methods}  # both found within TOLERANCE px
    for p in range(args.placements):
        (fa, ca), (fb, cb) = samples[2 * p], samples[2 * p + 1]
        image, boxes = canvas(load_image(fa), load_image(fb))
        x = TF.normalize(TF.to_tensor(image), model.mean, model.std)[None].to(model.device)
        for name, fn in methods.items():
            hits = close = 0
            for cls, (x0, y0, x1, y1) in zip((ca, cb), boxes):
                amap = fn(x, cls).detach().float().cpu()
                row, col = divmod(int(amap.argmax()), amap.shape[1])
                hits += x0 <= col < x1 and y0 <= row < y1
                close += x0 - TOLERANCE <= col < x1 + TOLERANCE and y0 - TOLERANCE <= row < y1 + TOLERANCE
            single[name] += hits
            both[name] += hits == 2
            near[name] += close == 2
        print(f"placement {p + 1}: {fa.name} + {fb.name}; so far " +
              ", ".join(f"{m} {both[m]}" for m in methods), flush=True)
    print(f"pointing game, {args.placements} placements (seed {args.seed}), occlusion window {args.window} "
          f"stride {args.stride}; hits = both objects found (and objects found of {2 * args.placements}); "
          f"then with {TOLERANCE} px tolerance")
    for name in methods:
        print(f"{name:22s} {both[name]:2d}/{args.placements}  ({single[name]}/{2 * args.placements} objects)"
              f"  within {TOLERANCE} px: {near[name]:2d}/{args.placements}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
