"""`anatomy`: a network's layers with their shapes, parameters, multiply-adds, strides and receptive fields."""
from __future__ import annotations

import argparse
import json

import torch

from vislib.anatomy import anatomy, format_count, totals
from vislib.cli.common import OK, CommandError, positive
from vislib.models import DEFAULT_MODEL, ModelError, family, list_models, load_model


def anatomy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="a model of the zoo (see `models`) or a checkpoint file (default: %(default)s)")
    p.add_argument("--arch", help="the architecture of a checkpoint given as --model")
    p.add_argument("--labels", help="a text file of class names, one a line, for a checkpoint")
    p.add_argument("--size", type=positive, metavar="PX", help="input size in pixels (default: the model's own)")
    p.add_argument("--json", action="store_true",
                   help='one JSON object: {"model", "input_size", "layers": [...], "totals": {...}}')


def _architecture(name: str):
    """The zoo network `name` with uninitialised weights: shapes, parameters and multiply-adds do not
    depend on the weights, so nothing is downloaded or read, and a network whose weights are not on
    this machine can be told too. Built on the meta device and then given empty memory, so no
    random generator is touched and no time is spent on an initialisation."""
    fam = family(name)
    labels = fam.weights.labels()
    with torch.device("meta"):
        net = fam.build(len(labels))
    return fam.assemble(net.to_empty(device="cpu"), labels, "cpu")


def anatomy_run(args: argparse.Namespace) -> int:
    if args.model in list_models():  # the zoo's architecture: no weights to download or load
        model = _architecture(args.model)
    else:
        try:
            model = load_model(args.model, device="cpu", arch=args.arch, labels=args.labels)
        except (ModelError, OSError):
            raise
        except Exception as err:  # a person's file can break a loader in ways nobody listed
            raise CommandError(f"The model {args.model} could not be loaded ({type(err).__name__}: {err}).") from err
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
