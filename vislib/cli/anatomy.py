"""`anatomy`: a network's layers with their shapes, parameters, multiply-adds, strides and receptive fields."""
from __future__ import annotations

import argparse
import json
import os

import torch

from vislib.anatomy import anatomy, format_count, totals
from vislib.cli.common import OK, model_args, open_model, positive
from vislib.models import ModelError, family


def anatomy_args(p: argparse.ArgumentParser) -> None:
    model_args(p)
    p.add_argument("--size", type=positive, metavar="PX", help="input size in pixels (default: the model's own)")
    p.add_argument("--json", action="store_true",
                   help='one JSON object: {"model", "input_size", "layers": [...], "totals": {...}}')


def _architecture(name: str):
    """The network called `name` (the zoo's, torchvision's or timm's) with uninitialised weights, or
    None if no family has that name: shapes, parameters and multiply-adds do not depend on the
    weights, so nothing is downloaded or read, and a network whose weights are not on this machine
    can be told too. Built on the meta device and then given empty memory, so no random generator
    is touched and no time is spent on an initialisation."""
    try:
        fam = family(name)
    except ModelError:
        return None  # load_model says why, in the words every command uses
    labels = fam.weights.labels() if fam.weights is not None else [f"class {i}" for i in range(1000)]
    try:
        with torch.device("meta"):
            net = fam.build(len(labels))
        net = net.to_empty(device="cpu")
    except Exception:  # a builder that computes with real numbers on the way: build it for real
        net = fam.build(len(labels))
    return fam.assemble(net, labels, "cpu")


def anatomy_run(args: argparse.Namespace) -> int:
    own = os.path.exists(args.model) or any(getattr(args, k) is not None
                                            for k in ("arch", "labels", "input_size", "mean", "std"))
    model = None if own else _architecture(args.model)
    if model is None:
        model = open_model(args, device="cpu")  # a person's file, or the sentence for a name nobody has
    size = args.size or model.input_size
    rows = anatomy(model, size)
    sums = totals(rows)
    if args.json:
        print(json.dumps({"model": model.name, "input_size": size, "layers": rows, "totals": sums}))
        return OK
    width = max(len(r["name"]) for r in rows)
    print(f"{model.name} at {size} x {size} px")
    print(f"{'layer':<{width}}  {'kind':<15} {'output':<15} {'params':>9} {'MACs':>9} {'stride':>6} {'RF':>5}")
    for r in rows:
        shape = " x ".join(str(s) for s in r["output_shape"])
        stride, rf = ("-" if r[k] is None else r[k] for k in ("stride", "receptive_field"))
        print(f"{r['name']:<{width}}  {r['kind']:<15} {shape:<15} {format_count(r['params']):>9} "
              f"{format_count(r['macs']):>9} {stride:>6} {rf:>5}")
    print(f"total: {sums['params']:,} parameters, {sums['macs']:,} multiply-adds per picture, "
          f"{sums['layers']} layers ({sums['weighted_layers']} with weights)")
    return OK
