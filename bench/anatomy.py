"""How long `vislib.anatomy.anatomy` takes on every zoo architecture, and whether its multiply-adds
equal torch's own count.

In one process, per architecture (random weights: the anatomy does not depend on them): (a) torch's
`FlopCounterMode` over a real forward pass at the model's input size - the reference for the
multiply-adds (FLOPs / 2) and a sense of what a plain pass costs; (b) our first, uncached anatomy
(shapes, parameters, MACs, strides, receptive fields, on a weightless meta twin); (c) the same call
again, from the cache. Goal: (b) <= 2 s for every zoo model on a CPU; MACs equal to (a).

    python bench/anatomy.py [--quick] [--models alexnet vgg19 ...]
"""
import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vislib.anatomy import anatomy, totals
from vislib.models import family, list_models

QUICK = ["fashion_cnn", "efficientnet_lite0", "resnet18"]


def random_model(arch: str):
    fam = family(arch)
    labels = fam.weights.labels()
    with torch.random.fork_rng():  # a script of its own, but it leaves the generator as it found it
        torch.manual_seed(0)
        net = fam.build(len(labels))
    return fam.assemble(net, labels, "cpu")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    p.add_argument("--models", nargs="+", default=None)
    args = p.parse_args()
    names = args.models or (QUICK if args.quick else list_models())
    torch.set_flush_denormal(True)  # random EfficientNets fade into denormals: keep the reference pass fair
    print(f"CPU, {torch.get_num_threads()} threads; goal: first anatomy <= 2 s, MACs equal to torch's FLOPs / 2")
    worst = 0.0
    for name in names:
        model = random_model(name)
        size = model.input_size
        start = time.perf_counter()
        with torch.no_grad(), model.running() as net, FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, 3, size, size))
        reference_s = time.perf_counter() - start
        start = time.perf_counter()
        rows = anatomy(model)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        anatomy(model)
        cached_s = time.perf_counter() - start
        macs = totals(rows)["macs"]
        same = macs == counter.get_total_flops() // 2
        worst = max(worst, first_s)
        print(f"{name:<20} {size:>3} px  {len(rows):>3} layers  MACs {macs / 1e9:7.3f} G "
              f"({'equal to' if same else 'DIFFERENT from'} torch's)  torch pass {reference_s:6.3f} s  "
              f"anatomy {first_s:6.3f} s  cached {cached_s * 1000:6.1f} ms", flush=True)
    print(f"slowest first anatomy: {worst:.3f} s ({'OK' if worst <= 2 else 'over the 2 s goal'})")


if __name__ == "__main__":
    main()
