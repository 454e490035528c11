"""Loading a person's checkpoint through vislib against the library's own way, side by side.

    python bench/checkpoint_load.py [--archs resnet50,convnext_tiny,...] [--repeat 9] [--classes 1000]

For each architecture a checkpoint with random weights is saved as .safetensors (nothing is
downloaded), then loaded alternately, in one process:
  vislib:  vislib.load_model(path, arch=NAME)  (checks the keys, builds the family's network, loads
           the weights, eval mode, frozen, channels-last on the CPU, preprocessing and catalogue);
  library: torchvision.models.get_model(NAME, num_classes=...) or timm.create_model(NAME, num_classes=...),
           then load_state_dict(safetensors.torch.load_file(path)) and eval().
The first load of each is shown apart (vislib's includes surveying the architecture, once per
process: a generated family is made on first use); then the median of --repeat alternated loads
and their ratio (goal: at most 1.5x).
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
import warnings

import timm
import torch
import torchvision
from safetensors.torch import load_file, save_file

import vislib

ARCHS = ("resnet50", "convnext_tiny", "densenet121", "efficientnet_b0", "timm:resnet26d")


def library_build(name: str, classes: int) -> torch.nn.Module:
    if name.startswith("timm:"):
        return timm.create_model(name[5:], num_classes=classes)
    return torchvision.models.get_model(name, weights=None, num_classes=classes)


def library_load(name: str, path: str, classes: int) -> torch.nn.Module:
    net = library_build(name, classes)
    net.load_state_dict(load_file(path))
    return net.eval()


def vislib_load(name: str, path: str, classes: int) -> vislib.Model:
    return vislib.load_model(path, arch=name, device="cpu")


def timed(load, *args) -> float:
    # The networks loaded before are collected first: else their cycles (a Model and its network's
    # hooks) were freed by a garbage collection inside whichever load came next, which made a 0.1 s
    # load take 0.1 to 0.7 s on either side.
    gc.collect()
    started = time.perf_counter()
    load(*args)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--classes", type=int, default=1000)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.classes} classes, "
          f"median of {args.repeat} alternated loads")
    print("| architecture | MB | first: vislib / library s | vislib s | library s | ratio |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for name in args.archs.split(","):
            torch.manual_seed(0)
            path = os.path.join(folder, name.replace(":", "_") + ".safetensors")
            save_file({k: v.contiguous() for k, v in library_build(name, args.classes).state_dict().items()}, path)
            first = timed(vislib_load, name, path, args.classes), timed(library_load, name, path, args.classes)
            ours, theirs = [], []
            for i in range(args.repeat):  # alternate, starting with each side in turn
                pair = [(vislib_load, ours), (library_load, theirs)]
                for load, times in (pair if i % 2 == 0 else pair[::-1]):
                    times.append(timed(load, name, path, args.classes))
            ratio = statistics.median(ours) / statistics.median(theirs)
            worst = max(worst, ratio)
            print(f"| {name} | {os.path.getsize(path) / 2**20:.0f} | {first[0]:.2f} / {first[1]:.2f} | "
                  f"{statistics.median(ours):.3f} | {statistics.median(theirs):.3f} | {ratio:.2f}x |", flush=True)
    print(f"largest ratio {worst:.2f}x (goal <= 1.5x) {'OK' if worst <= 1.5 else 'NOT MET'}")
    return 0 if worst <= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
