"""Which map to trust, over the ImageNet samples on efficientnet_lite0: the leaderboard of every
attribution method and both baselines (vislib.trust.leaderboard's scores, with their time), then
the checks the papers lead us to expect:

* Grad-CAM and occlusion beat both baselines (Random, Edges) on insertion and on deletion;
* Petsiuk et al. 2018's ordering on insertion: RISE >= Grad-CAM > sliding window (occlusion).

    python bench/leaderboard.py [--pictures N] [--quick] [--methods A,B] [--metrics A,B]
                                [--scores FILE.csv] [--device cpu|cuda] [--budget SECONDS]

Pictures are N of the 1000 samples (one per class), evenly spaced over the classes, each explained
for the network's top class, taken in an order that keeps every prefix spread over the classes
(a stopped run's table is a fair sample). Resumable: each picture's scores are appended to --scores as soon as
they are made, and a rerun with the same file skips the pictures (and methods) already there, so
the 1000-picture run can be done in pieces; each map's seconds (with its scores) go beside it, to
FILE-seconds.csv. With the papers' settings and all five metrics the file is, by default,
bench/leaderboard-lite0.csv, kept in the repository: the run at 75-90 s a picture on a 2-core CPU
(about a day for 1000) grows over sessions and machines instead of starting again each time.
--budget: start no picture after that many seconds, then print the table of what is there (a
session's share of the long run, or a GPU check's). --quick: 3 pictures, six methods (RISE with 1000 masks), deletion and insertion only - the plumbing
in a minute or two. Skips cleanly when ../shared/data is absent.
"""
import argparse
import os
import sys
import time
from pathlib import Path

# pytorch-grad-cam draws a progress bar for every Score-CAM and Ablation-CAM map; tqdm reads this
# when it is imported, so before the library is.
os.environ.setdefault("TQDM_DISABLE", "1")

import pandas as pd

from vislib import attribution, load_model, trust
from vislib.data.collections import open_collection

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"
QUICK = ["saliency", "gradcam", "occlusion", "rise", "random", "edges"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pictures", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--methods", help="comma-separated (default: every method of the registry)")
    ap.add_argument("--metrics", help="comma-separated (default: all five)")
    ap.add_argument("--scores", type=Path, help="default: bench/leaderboard-lite0.csv with all metrics and the "
                    "papers' settings, else bench/out/leaderboard-scores.csv")
    ap.add_argument("--device", default=None)
    ap.add_argument("--budget", type=float, help="seconds: start no picture after this, then summarise")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not here (the ImageNet samples live outside the repository)")
        return 0
    methods = args.methods.split(",") if args.methods else QUICK if args.quick else list(attribution.METHODS)
    metrics = args.metrics.split(",") if args.metrics else ["deletion", "insertion"] if args.quick else list(
        trust.METRICS)
    params = {"rise": {"masks": 1000}} if args.quick else {}
    n = 3 if args.quick else args.pictures
    if args.scores is None:
        kept = not params and set(metrics) == set(trust.METRICS)  # rows a later full run can reuse
        args.scores = Path("bench/leaderboard-lite0.csv" if kept else "bench/out/leaderboard-scores.csv")
    timings = args.scores.with_name(args.scores.stem + "-seconds.csv")
    model = load_model("efficientnet_lite0", device=args.device)
    if not args.methods and (why := attribution.relevance.support(model)):
        methods.remove("lrp")  # every method that can explain the network
        print(f"without LRP: {why}")
    collection = open_collection(DATA)
    chosen = trust.spread(len(collection), n)  # evenly over the classes, every prefix too
    done = trust.read_scores(args.scores) if args.scores.exists() else pd.DataFrame(columns=trust.SCORE_COLUMNS)
    have = trust.scored(done, metrics)
    args.scores.parent.mkdir(parents=True, exist_ok=True)
    print(f"{model.name} on {model.device}; {n} pictures x {len(methods)} methods x {len(metrics)} metrics; "
          f"{len(have)} (picture, method) pairs already in {args.scores}", flush=True)

    seconds: dict[str, list[float]] = {m: [] for m in methods}
    begun = time.perf_counter()
    for k, index in enumerate(chosen):
        started = time.perf_counter()
        if args.budget is not None and started - begun > args.budget and any((index, m) not in have for m in methods):
            print(f"the {args.budget:.0f} s budget is spent: stopped before picture {k + 1}/{n}", flush=True)
            break
        fresh, spent = [], []
        for method in methods:
            if (index, method) in have:
                continue
            t = time.perf_counter()
            fresh.append(trust.picture_scores(model, collection, [method], metrics, params=params, pictures=[index]))
            seconds[method].append(time.perf_counter() - t)
            spent.append({"picture": index, "method": method, "seconds": seconds[method][-1],
                          "device": str(model.device)})
        if fresh:
            rows = pd.concat(fresh, ignore_index=True)
            _append(rows, args.scores)
            _append(pd.DataFrame(spent), timings)
            done = pd.concat([done, rows], ignore_index=True)
            print(f"picture {k + 1}/{n} (#{index}): {time.perf_counter() - started:.1f} s", flush=True)

    wanted = trust.complete_pictures(done, chosen, methods, metrics)
    table = trust.summarise(wanted)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    timed = {m: s for m, s in seconds.items() if s}
    if timed:
        print("\nseconds per picture (map + scores), this run:")
        for m, s in sorted(timed.items(), key=lambda kv: -sum(kv[1]) / len(kv[1])):
            print(f"  {attribution.METHODS[m].label:22s} {sum(s) / len(s):7.2f}")
        per_picture = sum(sum(s) / len(s) for s in timed.values())
        hours = per_picture * 1000 / 3600
        print(f"  all methods            {per_picture:7.2f}  -> 1000 pictures in about {hours:.1f} h")
    if timings.exists():
        spent = pd.read_csv(timings)
        spent = spent[spent["picture"].isin(chosen) & spent["method"].isin(methods)]
        print(f"\nthe table's {wanted['picture'].nunique()} pictures: {len(spent)} of their "
              f"{wanted.groupby(['picture', 'method']).ngroups} maps timed in {args.scores.name}'s runs, "
              f"{spent['seconds'].sum() / 3600:.2f} h in all ({', '.join(sorted(set(spent['device'])))})")
    checks(table)
    return 0


def _append(rows: pd.DataFrame, path: Path) -> None:
    """Rows at the end of a CSV file (a header when it starts it), six significant digits."""
    rows.to_csv(path, mode="a", header=not path.exists() or path.stat().st_size == 0, index=False,
                float_format="%.6g")


def _mean(table, method, metric):
    row = table[(table["method"] == method) & (table["metric"] == metric)]
    return float(row["mean"].iloc[0]) if len(row) else None


def checks(table: pd.DataFrame) -> None:
    print()
    for method in ("gradcam", "occlusion"):
        for metric in ("insertion", "deletion"):
            ours = _mean(table, method, metric)
            bases = {b: _mean(table, b, metric) for b in ("random", "edges")}
            if ours is None or None in bases.values():
                print(f"{method} vs the baselines on {metric}: not measured")
                continue
            better = all((ours > v) if trust.METRICS[metric].higher_is_better else (ours < v) for v in bases.values())
            print(f"{method} beats both baselines on {metric}: {'YES' if better else 'NO'} "
                  f"({ours:.4f} vs random {bases['random']:.4f}, edges {bases['edges']:.4f})")
    rise, cam, occ = (_mean(table, m, "insertion") for m in ("rise", "gradcam", "occlusion"))
    if None in (rise, cam, occ):
        print("Petsiuk's insertion ordering (RISE >= Grad-CAM > occlusion): not measured")
    else:
        holds = rise >= cam > occ
        print(f"Petsiuk's insertion ordering RISE >= Grad-CAM > occlusion: {'HOLDS' if holds else 'DOES NOT HOLD'} "
              f"(RISE {rise:.4f}, Grad-CAM {cam:.4f}, occlusion {occ:.4f})")


if __name__ == "__main__":
    sys.exit(main())
