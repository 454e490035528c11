"""`vislib atlas build` and `vislib atlas show`: a network's atlas on disk, built locally or on Ray."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vislib.cli.common import OK, CommandError, model_args, open_model, positive


def atlas_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "show"], help="build (or resume) an atlas, or show what one holds")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="the atlas folder")
    model_args(p)
    p.add_argument("--layers", help="layer names separated by commas, e.g. blocks.2.0,blocks.4.0")
    p.add_argument("--collection", metavar="SRC", help="a folder, a .zip, samples, fashion-mnist, imagenette or cifar-10")
    p.add_argument("--k", type=positive, default=9, help="top pictures kept per channel (default: 9)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local, or ray: RAY_ADDRESS's cluster, else a local Ray (default: local)")
    p.add_argument("--steps", type=positive, default=256, help="feature visualisation steps (default: 256)")
    p.add_argument("--size", type=positive, help="feature visualisation size in pixels (default: the network's)")
    p.add_argument("--no-visualize", action="store_true", help="skip the feature visualisations")
    p.add_argument("--batch-size", type=positive, metavar="N", help="pictures a batch (default: 64 on a GPU, 16 on a CPU)")


def atlas_run(args: argparse.Namespace) -> int:
    from vislib import atlas
    if args.action == "show":
        return _show(atlas.open(args.out))
    if not args.layers or not args.collection:
        raise CommandError("atlas build needs --layers and --collection.")
    from vislib.datasets import open_collection
    model = open_model(args)
    collection = open_collection(args.collection)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]

    def progress(done, total, *rest, **info):
        print(f"\r{done}/{total}", end="", file=sys.stderr, flush=True)

    built = atlas.build(model, layers, collection, args.out, k=args.k, visualize=not args.no_visualize,
                        steps=args.steps, size=args.size, engine=args.engine, batch_size=args.batch_size,
                        progress=progress)
    print(file=sys.stderr)
    return _show(built)


def _show(found) -> int:
    m = found.manifest
    print(f"{found.folder}: {m['model']['name']} over {m['collection']['name']} ({m['collection']['size']} pictures), "
          f"{'complete' if found.complete else 'not finished: build again to resume'}")
    for entry in m["layers"]:
        print(f"  {entry['name']}: {entry['channels']} channels, map {entry['size'][0]}x{entry['size'][1]}")
    return OK
