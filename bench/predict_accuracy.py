"""Top-1 / top-5 accuracy over ../shared/data/imagenet-samples, through `vislib.predict.classify`
(the code path of `python -m vislib predict`).

    python bench/predict_accuracy.py [--models efficientnet_lite0 ...] [--limit N] [--batch-size N]
"""
import argparse
import sys
import time
from pathlib import Path


from vislib import load_model
from vislib.predict import classify

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples (sorted by name)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if not (DATA / "imagenet-samples").is_dir():
        print(f"skipped: {DATA} is not here (the ImageNet samples live outside the repository)")
        return 0
    index = {wnid: i for i, wnid in enumerate((DATA / "imagenet-wnids.txt").read_text().split())}
    files = sorted(f for f in (DATA / "imagenet-samples").iterdir() if f.is_file())[: args.limit]
    truth = [index[f.name.split("_")[0]] for f in files]
    for name in args.models:
        model = load_model(name)
        start = time.perf_counter()
        top1 = top5 = failed = 0
        for (path, result), want in zip(classify(model, files, top=5, batch_size=args.batch_size), truth):
            if isinstance(result, str):
                failed += 1
                continue
            ids = [i for i, _, _ in result]
            top1 += ids[0] == want
            top5 += want in ids
        seconds = time.perf_counter() - start
        n = len(files)
        print(f"{name} top1={top1 / n:.3f} top5={top5 / n:.3f} n={n} failed={failed} time={seconds:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
