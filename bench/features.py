"""Does `vislib.features.extract` keep the network busy, and is its cache fast?

In one process, over the ImageNet samples: (a) the bare network's forward passes on preprocessed
tensors already in memory, (b) `features.extract` over the same pictures at the same batch size
(decoding, resizing and the penultimate features included), timed alternately on the same chunks
so that outside load slows both alike; then (c) `extract` again on every chunk, now read from the
disk cache. Goals: (b) reaches >= 80% of (a)'s throughput; (c) is >= 20x faster than (b).

    python bench/features.py [--model efficientnet_lite0] [--batch-size 64] [--limit N] [--chunk-batches 4]
"""
import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch


from vislib import features, load_model
from vislib.datasets import open_collection
from vislib.device import describe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--chunk-batches", type=int, default=4)
    args = p.parse_args()
    if not DATA.exists():
        print(f"{DATA} is not here; nothing to measure.")
        return
    os.environ["VISLIB_CACHE"] = tempfile.mkdtemp(prefix="vislib-bench-")  # a cold cache
    model = load_model(args.model)
    collection = open_collection(DATA)
    n = min(args.limit, len(collection))
    step = args.batch_size * args.chunk_batches
    chunks = [collection.subset(range(i, min(i + step, n))) for i in range(0, n, step)]
    bare_s = extract_s = cached_s = 0.0
    ratios = []
    for chunk in chunks:
        tensors = [model.preprocess(chunk[i][0]) for i in range(len(chunk))]
        batches = [torch.stack(tensors[i:i + args.batch_size]) for i in range(0, len(tensors), args.batch_size)]
        start = time.perf_counter()
        with torch.inference_mode(), model.running() as net:  # the shared network's one way to run
            for b in batches:
                net(b.to(model.device)).cpu()
        a = time.perf_counter() - start
        start = time.perf_counter()
        features.extract(model, chunk, batch_size=args.batch_size)
        b = time.perf_counter() - start
        start = time.perf_counter()
        features.extract(model, chunk, batch_size=args.batch_size)
        c = time.perf_counter() - start
        bare_s, extract_s, cached_s = bare_s + a, extract_s + b, cached_s + c
        ratios.append(a / b)
    print(f"{args.model}, {n} pictures, batch {args.batch_size}, {describe(model.device)}")
    print(f"bare forward     {n / bare_s:8.1f} pictures/s")
    print(f"features.extract {n / extract_s:8.1f} pictures/s  = {bare_s / extract_s:.2f} of bare "
          f"(median chunk {statistics.median(ratios):.2f}; goal >= 0.80)")
    print(f"cached second run {cached_s * 1000:.1f} ms = {extract_s / cached_s:.0f}x faster (goal >= 20x)")


if __name__ == "__main__":
    main()
