"""The five gradient methods on one 224 px picture, ours beside Captum called directly, in one process.

    python bench/gradient_methods.py [--model efficientnet_lite0] [--device cpu] [--repeat 3]

Goals (issue 3): on this CPU the whole matrix in at most 4 s, saliency + guided backprop + Grad-CAM
(what the page shows first) within 0.5 s; on a GPU the whole matrix within 0.1 s. Captum's
GuidedBackprop hooks nn.ReLU only, so on ReLU6 networks its time is that of a plain gradient.
"""
import argparse
import copy
import sys
import time


import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop, IntegratedGradients, LayerGradCam, NoiseTunnel, Saliency

from vislib import attribution, load_model
from vislib.images import sample_images

FIRST = ["saliency", "guided_backprop", "gradcam"]


def captum_methods(model, x, target):
    """Captum alone, as a notebook would call it (on a private copy without in-place ReLUs, which its
    hooks refuse, and without the shared network's queue guard)."""
    with model.running() as shared:
        net = copy.deepcopy(shared)
    net._forward_pre_hooks.clear()
    for m in net.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    layer = net.get_submodule(attribution.gradcam_layer(model))
    black = attribution.baseline_image(model, x, "black")
    sd = 0.15 * float(x.max() - x.min())
    return {
        "saliency": lambda: Saliency(net).attribute(x.requires_grad_(), target=target, abs=True),
        "guided_backprop": lambda: GuidedBackprop(net).attribute(x.requires_grad_(), target=target),
        "gradcam": lambda: F.interpolate(LayerGradCam(net, layer).attribute(x, target=target, relu_attributions=True),
                                         size=x.shape[2:], mode="bilinear"),
        "smoothgrad": lambda: NoiseTunnel(Saliency(net)).attribute(x, target=target, abs=True, nt_type="smoothgrad",
                                                                   nt_samples=16, stdevs=sd),
        "integrated_gradients": lambda: IntegratedGradients(net).attribute(x, black, target=target, n_steps=32,
                                                                           internal_batch_size=16),
    }


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs of each (default: 3)")
    args = parser.parse_args()
    model = load_model(args.model, device=args.device)
    x = model.preprocess(sample_images()["chelsea (cat)"]())[None].to(model.device)
    target = int(model.probabilities(x)[0].argmax())
    ours = {m: (lambda m=m: attribution.attribute(model, x, m, target)) for m in captum_methods(model, x, target)}
    reference = captum_methods(model, x, target)
    for fn in [*ours.values(), *reference.values()]:
        fn()  # warm up: first calls allocate and pick kernels
    print(f"{args.model} on {model.device}, 224 px, best of {args.repeat}, torch threads {torch.get_num_threads()}")
    times = {}
    for name in ours:
        times[name] = best_of(ours[name], args.repeat)
        theirs = best_of(reference[name], args.repeat)
        print(f"{name:22s} ours={times[name]:.3f}s captum={theirs:.3f}s ratio={times[name] / theirs:.2f}")
    matrix = best_of(lambda: [fn() for fn in ours.values()], args.repeat)
    first = best_of(lambda: [ours[m]() for m in FIRST], args.repeat)
    print(f"first three on screen {first:.3f}s (goal <= 0.5 s on the CPU)")
    print(f"whole matrix {matrix:.3f}s (goal <= 4 s on the CPU, <= 0.1 s on a GPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
