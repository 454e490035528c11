"""Engine overhead: one optvis.render step against a bare forward+backward of the same network.

Both in one process, same network, same input size, alternating, so that load on the machine
affects both alike. Goal: ratio <= 1.3.

    python bench/engine_overhead.py [--model efficientnet_lite0] [--size 224] [--steps 20]
"""
import argparse
import time

import torch


import vislib
from vislib import optvis as O


def bare(model, size, steps):
    x = torch.rand(1, 3, size, size, device=model.device, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05)
    start = time.perf_counter()
    for _ in range(steps):
        with model.running() as net:  # as the engine does: the device queue once per step
            opt.zero_grad()
            (-net(model.preprocessing.normalise(x))[:, 1].mean()).backward()
            opt.step()
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def engine(model, size, steps, param, transforms):
    start = time.perf_counter()
    O.render(model, O.class_logit(1), param(size), transforms, steps=steps,
             progress=lambda *a, **k: True, preview_every=10)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's); 1 is steadier on a busy machine")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = vislib.load_model(args.model)
    cases = {"pixels": (O.pixels, []), "fourier+transforms": (O.fourier, O.standard_transforms())}
    bare(model, args.size, 2)  # warm-up
    times = {"bare": [], **{k: [] for k in cases}}
    for _ in range(args.rounds):
        times["bare"].append(bare(model, args.size, args.steps))
        for name, (param, transforms) in cases.items():
            make = lambda s, p=param: p(s, device=model.device)  # noqa: E731
            times[name].append(engine(model, args.size, args.steps, make, transforms))
    base = min(times["bare"])
    print(f"{args.model} {args.size}px on {model.device}: bare forward+backward+Adam {base * 1000:.0f} ms/step")
    for name in cases:
        best = min(times[name])
        print(f"  render, {name}: {best * 1000:.0f} ms/step, ratio {best / base:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
