"""Does `vislib.predict.classify` keep the network busy?

In one process: (a) the bare network's forward throughput on preprocessed tensors already in
memory, (b) `classify` over the same files, decoding and resizing included, at the same batch
size. The goal is (b) / (a) >= 0.80.

The two are timed alternately on the same chunks of files (8 batches each), so that other work
on the machine slows both alike; the totals give the throughputs, and the median of the
chunk-by-chunk ratios is printed too, as a check that is robust to a burst of outside load.

    python bench/predict_throughput.py [--model efficientnet_lite0] [--batch-size 32] [--limit N] [--repeat 1]
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch


from vislib import load_image, load_model
from vislib.device import describe
from vislib.predict import classify

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def bare(model, tensors: list[torch.Tensor], batch_size: int) -> float:
    """Seconds for the forward passes alone (softmax included, as classify does)."""
    batches = [torch.stack(tensors[i:i + batch_size]) for i in range(0, len(tensors), batch_size)]
    if model.device.type == "cuda":
        batches = [b.to(model.device) for b in batches]  # (a) leaves out the copy to the GPU as well
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        for b in batches:
            model.probabilities(b)  # ends on the CPU, so the GPU has finished
    return time.perf_counter() - start


def pipelined(model, files: list[Path], batch_size: int) -> float:
    start = time.perf_counter()
    n = sum(1 for _ in classify(model, files, top=5, batch_size=batch_size))
    assert n == len(files)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples (sorted by name)")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the files")
    args = parser.parse_args()
    if not (DATA / "imagenet-samples").is_dir():
        print(f"skipped: {DATA} is not here (the ImageNet samples live outside the repository)")
        return 0
    files = sorted(f for f in (DATA / "imagenet-samples").iterdir() if f.is_file())[: args.limit]
    model = load_model(args.model)
    tensors = [model.preprocess(load_image(f)) for f in files]
    print(f"{args.model} on {describe(model.device)}, {len(files)} images x {args.repeat}, batch {args.batch_size}",
          flush=True)
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        # Under contention OpenMP's busy-waiting costs the bare loop more than classify (whose extra
        # threads make libgomp back off), so the ratio can exceed 1; OMP_WAIT_POLICY=passive evens it.
        print(f"warning: load average {load:.1f} on {os.cpu_count()} cores; the machine is busy, "
              "so these numbers are only a rough guide", flush=True)

    warm = 2 * args.batch_size
    bare(model, tensors[:warm], args.batch_size)
    pipelined(model, files[:warm], args.batch_size)

    chunk = 8 * args.batch_size
    t_bare = t_classify = 0.0
    ratios = []
    for _ in range(args.repeat):
        for i in range(0, len(files), chunk):
            a = bare(model, tensors[i:i + chunk], args.batch_size)
            b = pipelined(model, files[i:i + chunk], args.batch_size)
            t_bare, t_classify = t_bare + a, t_classify + b
            ratios.append(a / b)
    n = len(files) * args.repeat
    ratio = t_bare / t_classify
    print(f"bare forward: {n / t_bare:.1f} img/s")
    print(f"classify (decode+resize+forward): {n / t_classify:.1f} img/s")
    print(f"ratio: {ratio:.2f} (median of {len(ratios)} chunks {statistics.median(ratios):.2f}; goal >= 0.80) "
          f"{'OK' if ratio >= 0.80 else 'BELOW GOAL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
