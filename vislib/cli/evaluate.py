"""The command-line side of the leaderboard (an entry of cli.COMMANDS): `vislib evaluate` scores
attribution methods over a collection and writes the table as CSV (one row per method and metric:
mean, the 95% interval, n, which way is better, the best of each metric)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vislib.cli.common import OK, CommandError, model_args, open_model, positive, writable_file


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def evaluate_args(p: argparse.ArgumentParser) -> None:
    from vislib.trust import METRICS
    model_args(p)
    p.add_argument("--methods", required=True, metavar="A,B",
                   help="attribution methods, comma-separated (see `vislib explain --help`), e.g. gradcam,occlusion")
    p.add_argument("--collection", required=True, metavar="SRC", help="a folder, a .zip, samples or fashion-mnist")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.csv", help="the table to write")
    p.add_argument("--metrics", default=",".join(METRICS), metavar="A,B",
                   help="faithfulness metrics, comma-separated (default: %(default)s)")
    p.add_argument("--pictures", type=positive, metavar="N", help="N pictures spread evenly over the collection "
                   "(default: all)")
    p.add_argument("--steps", type=positive, default=20, help="steps of the deletion and insertion curves "
                   "(default: %(default)s)")
    p.add_argument("--scores", type=Path, metavar="FILE.csv",
                   help="also write every picture's scores here, each picture's as soon as they are made; when the "
                   "file is there, go on from it (a long run stopped, even by Ctrl-C, loses at most one picture)")


def evaluate_run(args: argparse.Namespace) -> int:
    from vislib.attribution import get_method
    from vislib.data.collections import open_collection
    from vislib.trust import SCORE_COLUMNS, check_metrics, picture_scores, read_scores, scored, spread, summarise
    methods, metrics = _names(args.methods), check_metrics(_names(args.metrics))
    if not methods:
        raise CommandError("Give --methods, e.g. --methods gradcam,occlusion.")
    for method in methods:  # a misspelt method is refused before the network loads
        get_method(method)
    writable_file(args.out, (".csv",))  # before the run, not after it
    if args.scores:
        writable_file(args.scores, (".csv",))
    earlier = read_scores(args.scores) if args.scores and args.scores.is_file() else None
    collection = open_collection(args.collection)
    model = open_model(args)
    chosen = spread(len(collection), args.pictures or len(collection))
    n = len(chosen)
    if earlier is not None:
        print(f"going on from {args.scores}: {len(scored(earlier, metrics))} maps already scored", file=sys.stderr)

    def progress(done, total, *_, **info):
        print(f"{done}/{total} maps (picture {info.get('picture')}, {info.get('method')})", file=sys.stderr,
              flush=True)

    def append(rows):
        header = not args.scores.is_file() or args.scores.stat().st_size == 0
        args.scores.parent.mkdir(parents=True, exist_ok=True)
        rows[SCORE_COLUMNS].to_csv(args.scores, mode="a", header=header, index=False)
    scores = picture_scores(model, collection, methods, metrics, progress, pictures=chosen, steps=args.steps,
                            earlier=earlier, each=append if args.scores else None)
    table = summarise(scores)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.out} ({len(table)} rows over {n} pictures)")
    return OK
