"""`python -m vislib embed`: a 2-D map (t-SNE or PCA) of features, as CSV or PNG (an entry of cli.COMMANDS)."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from vislib.cli.common import OK, CommandError, model_args, open_model, positive, writable_file

MAX_GRID = 4096  # pictures on a grid PNG: the optimal assignment is N x N


def embed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help="a .npy file of features [N, D], or a collection: a folder, "
                   "a .zip, samples, fashion-mnist, imagenette or cifar-10 (its features are extracted with --model)")
    p.add_argument("--method", choices=["tsne", "pca"], default="tsne", help="(default: %(default)s)")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE's neighbourhood size (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="t-SNE's seed (default: 0)")
    model_args(p, what="network for a collection")
    p.add_argument("--layer", help="layer for a collection (default: the penultimate features)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="the pass over a collection: local, or ray (RAY_ADDRESS's cluster, else a local Ray)")
    p.add_argument("--out", type=Path, help="a .csv (index, x, y[, label]) or .png file (default: CSV on stdout)")
    p.add_argument("--grid", action="store_true", help="with a collection and a .png: the pictures themselves, "
                   f"snapped to a square grid (at most {MAX_GRID})")
    p.add_argument("--tile", type=positive, default=32, help="pixels per picture on the grid (default: 32)")


def embed_run(args: argparse.Namespace) -> int:
    from vislib.data import embedding
    suffix = args.out.suffix.lower() if args.out else ".csv"
    if suffix not in (".csv", ".png"):
        raise CommandError(f"--out must end in .csv or .png, got {args.out.name}.")
    if args.grid and (suffix != ".png" or args.source.lower().endswith(".npy")):
        raise CommandError("--grid needs a collection of pictures and an --out file ending in .png.")
    if args.out:
        writable_file(args.out)
    features, collection = _features(args)
    if args.method == "pca":
        points = embedding.pca(features)
    else:
        def progress(step, total, preview=None, **info):
            print(f"step {step}  KL {info['kl']:.3f}", file=sys.stderr, end="\r", flush=True)
        points = embedding.tsne(features, seed=args.seed, perplexity=args.perplexity, progress=progress)
        print(file=sys.stderr)
    labels = None
    if collection is not None and collection.classes:
        labels = [collection.label_name(i) or "" for i in range(len(collection))]
    if suffix == ".png":
        _png(args, points, labels, collection)
    else:
        _csv(args.out, points, labels)
    return OK


def _features(args: argparse.Namespace):
    if args.source.lower().endswith(".npy"):
        if not Path(args.source).is_file():
            raise CommandError(f"There is no file {args.source}.")
        try:
            features = np.load(args.source, allow_pickle=False)
        except (OSError, ValueError):
            raise CommandError(f"{args.source} is not a numpy array file of features.") from None
        if features.ndim != 2 or len(features) < 4 or not np.issubdtype(features.dtype, np.number):
            raise CommandError(f"{args.source} holds an array of shape {features.shape}; a map needs numbers "
                               "[N, D] with N at least 4.")
        return features, None
    from vislib.data.collections import open_collection
    from vislib.data.features import extract
    collection = open_collection(args.source)
    if len(collection) < 4:
        raise CommandError(f"{collection.name} holds {len(collection)} pictures; a map needs at least 4.")
    model = open_model(args)

    def progress(done, total):
        print(f"features {done}/{total}", file=sys.stderr, end="\r", flush=True)

    features = extract(model, collection, args.layer, progress=progress, engine=args.engine)
    print(file=sys.stderr)
    return features, collection


def _csv(out: Path | None, points: np.ndarray, labels: list[str] | None) -> None:
    lines = ["index,x,y" + (",label" if labels else "")]
    for i, (x, y) in enumerate(points):
        lines.append(f"{i},{x:.6g},{y:.6g}" + (f",\"{labels[i]}\"" if labels else ""))
    text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


def _png(args: argparse.Namespace, points: np.ndarray, labels: list[str] | None, collection) -> None:
    if args.grid:
        if len(points) > MAX_GRID:
            raise CommandError(f"--grid takes at most {MAX_GRID} pictures; this collection has {len(points)}.")
        from vislib.data.embedding import grid_layout
        from vislib.data.features import thumbnail
        from vislib.render import grid
        side = math.ceil(math.sqrt(len(points)))
        cells = grid_layout(points, side, side)
        tiles = [None] * side * side
        for i, cell in enumerate(cells):
            tiles[cell] = thumbnail(collection[i][0], args.tile)
        from PIL import Image
        blank = Image.new("RGB", (args.tile, args.tile), (255, 255, 255))
        grid([t or blank for t in tiles], side, 0).save(args.out)
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    if labels:
        for name in sorted(set(labels)):
            mask = np.array([lab == name for lab in labels])
            ax.scatter(points[mask, 0], points[mask, 1], s=4, label=name or "(no label)")
        ax.legend(markerscale=3, fontsize=7)
    else:
        ax.scatter(points[:, 0], points[:, 1], s=4)
    ax.set_title(f"{args.method.upper() if args.method == 'pca' else 't-SNE'} map of {len(points)} points")
    ax.set_xticks([]), ax.set_yticks([])
    fig.savefig(args.out, bbox_inches="tight")
    plt.close(fig)
