"""The atlas's pass over a collection (issue 12): its time against features.extract, its memory
against the number of pictures, and Ray against the local engine.

- pass: two layers of lite0, top 9, over the ImageNet samples, against `features.extract` of the
  deeper layer over the same pictures (both at the same batch size, cold caches, alternated).
  Goal: at most 1.3x.
- memory: the pass's peak memory over N and 10 N pictures (the collection repeated), measured as
  the growth of the process's peak RSS in a fresh child process. Goal: flat.
- Ray: the same pass on a local Ray with 1 and 2 workers, start-up included; files identical to the
  local engine's. Goal: at most 3x the local engine on this 2-core machine.

    python bench/atlas.py [--limit 1000] [--layers blocks.2.1,blocks.4.0] [--memory-model fashion_cnn]
"""
import argparse
import filecmp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vislib import atlas, features, load_model
from vislib.datasets import open_collection
from vislib.runtime import describe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _same(a: Path, b: Path) -> bool:
    return _files(a) == _files(b) and not filecmp.cmpfiles(a, b, _files(a), shallow=False)[1]


def _peak_child(model: str, layers: str, repeat: int, limit: int) -> float:
    """Peak RSS growth (MB) of the pass in a fresh process over the samples repeated `repeat` times."""
    code = f"""
import resource, tempfile
from vislib import atlas, load_model
from vislib.datasets import open_collection
model = load_model({model!r})
c = open_collection({str(DATA)!r})
c = c.subset(list(range(min({limit}, len(c)))) * {repeat})
model.layers()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
atlas.build(model, {layers.split(',')!r}, c, tempfile.mkdtemp(), visualize=False)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--layers", default="blocks.2.1,blocks.4.0")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--memory-model", default="fashion_cnn",
                   help="the network for the memory check (small: 10 N pictures of lite0 take long on a CPU)")
    p.add_argument("--memory-layers", default="conv2,conv3")
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()
    if not DATA.exists():
        print(f"{DATA} is not here; nothing to measure.")
        return
    os.environ["VISLIB_CACHE"] = tempfile.mkdtemp(prefix="vislib-bench-")
    model = load_model(args.model)
    collection = open_collection(DATA)
    if args.limit < len(collection):
        collection = collection.subset(range(args.limit))
    layers = args.layers.split(",")
    print(f"{model.name} on {describe(model.device)}, {len(collection)} pictures, layers {layers}")
    model.layers()
    times = {"extract": [], "atlas": []}
    for rep in range(2):  # alternated, so that outside load slows both alike
        os.environ["VISLIB_CACHE"] = tempfile.mkdtemp(prefix="vislib-bench-")
        started = time.perf_counter()
        features.extract(model, collection, layers[-1])
        times["extract"].append(time.perf_counter() - started)
        local = Path(tempfile.mkdtemp(prefix="atlas-local-"))
        started = time.perf_counter()
        atlas.build(model, layers, collection, local, visualize=False)
        times["atlas"].append(time.perf_counter() - started)
    e, a = min(times["extract"]), min(times["atlas"])
    print(f"pass: atlas {a:.1f} s, features.extract {e:.1f} s: {a / e:.2f}x (goal <= 1.3x)")
    small = _peak_child(args.memory_model, args.memory_layers, 1, args.limit)
    large = _peak_child(args.memory_model, args.memory_layers, 10, args.limit)
    print(f"memory ({args.memory_model}): peak growth {small:.0f} MB over {args.limit} pictures, "
          f"{large:.0f} MB over {10 * args.limit}")
    if args.skip_ray:
        return
    for workers in (1, 2):
        folder = Path(tempfile.mkdtemp(prefix=f"atlas-ray{workers}-"))
        from vislib.runtime import ray_pool
        os.environ["VISLIB_RAY_WORKERS"] = str(workers)
        started = time.perf_counter()
        ray_pool.start()
        atlas.build(model, layers, collection, folder, visualize=False, engine="ray")
        seconds = time.perf_counter() - started
        print(f"ray, {workers} worker(s): {seconds:.1f} s with start-up: {seconds / a:.2f}x the local engine "
              f"(goal <= 3x); identical files: {_same(local, folder)}")
        import ray
        ray.shutdown()
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
