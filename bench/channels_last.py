"""Channels-last weights on the CPU, the engine's choice (`Family.assemble`), against the default
contiguous order: every family of the zoo, one process, the same random weights and pictures.

    python bench/channels_last.py [--batch 8] [--repeat 3] [--families a,b]

For each family: milliseconds a picture, forward (inference) and forward + backward to the input
(what the gradient methods do), contiguous then channels-last, their ratio, and the largest
difference of the logits (float rounding only). The order is about speed, not weights, so each
architecture is built with random weights (nothing to download).
"""
import argparse
import time

import torch

from vislib.models.registry import FAMILIES


def per_picture(net, x, backward: bool, repeat: int) -> float:
    def once():
        if backward:
            pictures = x.clone().requires_grad_(True)
            net(pictures)[:, 0].sum().backward()
        else:
            with torch.inference_mode():
                net(x)
    once()  # warm-up: oneDNN picks its kernels on the first pass
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - started)
    return best / len(x) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--families", help="comma-separated (default: all)")
    args = ap.parse_args()
    names = args.families.split(",") if args.families else list(FAMILIES)
    print(f"{'family':20s} {'forward ms/picture':>28s} {'forward+backward ms/picture':>32s}  max |logit diff|")
    for name in names:
        torch.manual_seed(0)
        family = FAMILIES[name]
        net = family.build(10 if name == "fashion_cnn" else 1000).eval().requires_grad_(False)
        size = 28 if name == "fashion_cnn" else 224
        x = torch.randn(args.batch, 3, size, size)
        with torch.inference_mode():
            reference = net(x)
        forward = per_picture(net, x, False, args.repeat)
        backward = per_picture(net, x, True, args.repeat)
        net = net.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            difference = float((net(x) - reference).abs().max())
        forward_cl = per_picture(net, x, False, args.repeat)
        backward_cl = per_picture(net, x, True, args.repeat)
        print(f"{name:20s} {forward:8.2f} -> {forward_cl:7.2f} ({forward / forward_cl:4.2f}x) "
              f"{backward:11.2f} -> {backward_cl:7.2f} ({backward / backward_cl:4.2f}x)  {difference:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
