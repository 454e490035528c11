"""`models` and `predict`: which networks there are, and what they see in pictures."""
from __future__ import annotations

import argparse
import json

from vislib.cli.common import FAILED, OK, device, expand_images, model_args, open_model, positive
from vislib.data.predict import classify
from vislib.models import availability, list_models


def models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per line: name, state, detail")


def models_run(args: argparse.Namespace) -> int:
    rows = [(name, availability(name)) for name in list_models()]
    width = max((len(n) for n, _ in rows), default=0)
    for name, a in rows:
        if args.json:
            print(json.dumps({"name": name, "state": a.state, "detail": a.detail}))
        else:
            print(f"{name:<{width}}  {a.state:<11}  {a.detail}")
    return OK


# ---------------------------------------------------------------- predict

def predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders of them")
    p.add_argument("--top", type=positive, default=5, metavar="K", help="how many classes to show (default: 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per image and line")
    p.add_argument("--batch-size", type=positive, default=32, metavar="N", help="images per forward pass (default: 32)")
    p.add_argument("--device", type=device,
                   help="cpu, cuda, mps, ... (default: $VISLIB_DEVICE, else the best one present)")
    model_args(p)


def predict_run(args: argparse.Namespace) -> int:
    images = list(expand_images(args.images))  # every path is checked before the model loads
    model = open_model(args, device=args.device)
    status = OK
    for path, result in classify(model, images, top=args.top, batch_size=args.batch_size):
        if isinstance(result, str):
            status = FAILED  # the others still get their answer
            line = json.dumps({"path": path, "error": result}) if args.json else f"{path}\n  error: {result}"
        elif args.json:
            line = json.dumps({"path": path, "top": [{"index": i, "label": label, "prob": round(p, 6)}
                                                     for i, label, p in result]})
        else:
            line = "\n".join([path, *(f"  {p:.3f}  {label} ({i})" for i, label, p in result)])
        print(line, flush=True)  # flushed per image, so a pipe sees results as they come
    return status
