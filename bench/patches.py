"""Is `vislib.patches` one cheap pass, and does its memory stay flat as the collection grows?

(1) Time: over the same pictures, alternately in chunks, `features.extract` at a layer and
`patches.top_state` at the same layer (the top k of EVERY channel), both with a cold cache.
Goal: patches within 1.5x of extract. (2) Memory: top_state over N and 10N pictures, each in a
fresh process, reporting the growth of the peak resident memory during the pass. Goal: the same.

    python bench/patches.py [--model fashion_cnn] [--collection fashion-mnist] [--layer conv3] [--limit 1000]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


from vislib import features, load_model, patches
from vislib.datasets import open_collection
from vislib.device import describe


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(args, n: int) -> None:
    """In this (fresh) process: the peak memory that one top_state pass over n pictures adds."""
    model, collection = load_model(args.model), open_collection(args.collection)
    picked = collection.subset([i % len(collection) for i in range(n)])  # repeated when n is larger
    patches.top_state(model, args.layer, picked.subset(range(args.batch_size)), args.k, batch_size=args.batch_size)
    before = _rss_mb()  # network, collection and one batch's working memory already paid for
    state = patches.top_state(model, args.layer, picked, args.k, batch_size=args.batch_size)
    print(f"{n} {_rss_mb() - before:.1f} {state.values.nbytes + state.positions.nbytes}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fashion_cnn")
    p.add_argument("--collection", default="fashion-mnist")
    p.add_argument("--layer", default="conv3")
    p.add_argument("--k", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--memory", type=int, help=argparse.SUPPRESS)  # the child process of part (2)
    args = p.parse_args()
    os.environ["VISLIB_CACHE"] = tempfile.mkdtemp(prefix="vislib-bench-")
    if args.memory:
        memory(args, args.memory)
        return
    model, collection = load_model(args.model), open_collection(args.collection)
    n = min(args.limit, len(collection))
    step = args.batch_size * 4
    extract_s = patch_s = 0.0
    ratios = []
    for i in range(0, n, step):
        chunk = collection.subset(range(i, min(i + step, n)))
        start = time.perf_counter()
        features.extract(model, chunk, layer=args.layer, batch_size=args.batch_size)
        a = time.perf_counter() - start
        start = time.perf_counter()
        patches.top_state(model, args.layer, chunk, args.k, batch_size=args.batch_size)
        b = time.perf_counter() - start
        extract_s, patch_s, ratios = extract_s + a, patch_s + b, ratios + [b / a]
    info = model.layer(args.layer)
    print(f"{args.model} {args.layer} ({info.channels} channels, {info.size[0]}x{info.size[1]}), {n} pictures of "
          f"{collection.name}, k={args.k}, batch {args.batch_size}, {describe(model.device)}")
    print(f"features.extract {extract_s:6.2f} s; top_state (all channels) {patch_s:6.2f} s = "
          f"{patch_s / extract_s:.2f}x (median chunk {statistics.median(ratios):.2f}x; goal <= 1.5x)")
    for size in (n, 10 * n):
        out = subprocess.run([sys.executable, __file__, "--memory", str(size), "--model", args.model,
                              "--collection", args.collection, "--layer", args.layer, "--k", str(args.k),
                              "--batch-size", str(args.batch_size)], capture_output=True, text=True, check=True)
        count, grown, state_bytes = out.stdout.split()[-3:]
        print(f"peak memory added by one pass over {int(count):6d} pictures: {float(grown):6.1f} MB "
              f"(the state itself: {int(state_bytes) / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
