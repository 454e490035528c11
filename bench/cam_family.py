"""pytorch-grad-cam's CAM variants: ours (`vislib.attribution.attribute`, through the device queue)
against the library called directly, in one process, on efficientnet_lite0.

    python bench/cam_family.py [--size 224] [--repeat N] [--batched-layer LAYER] [--device cpu] [--quick]

Per variant: the largest absolute difference over the library map's maximum (goal: at most 1e-4)
and the time ratio ours / library (best of --repeat runs each; goal: at most 1.2). Score-CAM and
Ablation-CAM make one pass per channel of their layer: by default Grad-CAM's layer (bn2, 1280
channels), `--batched-layer blocks.3.0` (80 channels) for a shorter run; --quick is 64 px, one run,
and blocks.3.0 for those two.
"""
import argparse
import sys
import time

import torch
from pytorch_grad_cam import AblationCAM, EigenCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from vislib import attribution, load_model
from vislib.images import sample_images

LIBRARY = {"gradcam_plus_plus": GradCAMPlusPlus, "xgradcam": XGradCAM, "layercam": LayerCAM, "hirescam": HiResCAM,
           "eigencam": EigenCAM, "scorecam": ScoreCAM, "ablationcam": AblationCAM}
BATCHED = ("scorecam", "ablationcam")
BATCH = 16


def library(model, x, target, method, layer):
    """The library called as its README does, on the shared network inside its queue."""
    with model.running() as net:
        options = {"batch_size": BATCH} if method == "ablationcam" else {}
        cam = LIBRARY[method](net, [model.module(layer)], **options)
        if method == "scorecam":
            cam.batch_size = BATCH
        try:
            return torch.from_numpy(cam(input_tensor=x.clone().requires_grad_(),
                                        targets=[ClassifierOutputTarget(target)])[0])
        finally:
            cam.activations_and_grads.release()


def best(repeat, *runs):
    """The best time and last result of each run, taken in turns so that a busy moment of the
    machine slows both sides alike."""
    times, outs = [[] for _ in runs], [None] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            started = time.perf_counter()
            outs[i] = run()
            times[i].append(time.perf_counter() - started)
    return [(min(t), out) for t, out in zip(times, outs)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=None, help="runs of each side (default 3; --quick 1)")
    parser.add_argument("--batched-layer", default=None, help="Score-CAM's and Ablation-CAM's layer")
    parser.add_argument("--methods", default=",".join(LIBRARY), help="comma-separated")
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batched_layer = 64, args.batched_layer or "blocks.3.0"
    args.repeat = args.repeat or (1 if args.quick else 3)
    model = load_model("efficientnet_lite0", device=args.device)
    image = sample_images()["chelsea (cat)"]().resize((args.size, args.size))
    x = model.preprocess(image)[None]  # resize and crop to the model's size, then back to --size
    x = torch.nn.functional.interpolate(x, size=(args.size, args.size), mode="bilinear", align_corners=False)
    x = x.to(model.device)
    target = 281
    print(f"efficientnet_lite0 on {model.device}, {args.size} px, best of {args.repeat}")
    print(f"{'method':18s} {'layer':11s} {'max|diff|/max':>13s} {'ours s':>8s} {'library s':>9s} {'ratio':>6s}")
    worst_diff, worst_ratio = 0.0, 0.0
    for method in args.methods.split(","):
        layer = (args.batched_layer if method in BATCHED else None) or attribution.gradcam_layer(model)
        params = {"layer": layer, **({"batch_size": BATCH} if method in BATCHED else {})}
        library(model, x, target, method, layer)  # warm-up: first-call costs land on neither side
        (t_ref, reference), (t_ours, ours) = best(args.repeat, lambda: library(model, x, target, method, layer),
                                                  lambda: attribution.attribute(model, x, method, target, **params))
        diff = float((ours - reference).abs().max() / reference.abs().max())
        worst_diff, worst_ratio = max(worst_diff, diff), max(worst_ratio, t_ours / t_ref)
        print(f"{method:18s} {layer:11s} {diff:13.2e} {t_ours:8.3f} {t_ref:9.3f} {t_ours / t_ref:6.2f}")
    print(f"worst difference {worst_diff:.2e} (goal <= 1e-4), worst time ratio {worst_ratio:.2f} (goal <= 1.2)")
    return 0 if worst_diff <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
