"""`models` and `predict`: which networks there are, and what they see in pictures."""
from __future__ import annotations

import argparse
import difflib
import json

from vislib.cli.common import FAILED, OK, CommandError, device, expand_images, model_args, open_model, positive
from vislib.data.predict import classify
from vislib.models import architectures, availability, list_models

MAX_STATES = 30  # --all --state: each network is built (on the meta device) to tell whether it can load


def models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="every architecture a network or checkpoint may have: the "
                   "zoo's, then torchvision's, then timm's as timm:NAME (names only, one a line)")
    p.add_argument("--search", metavar="TEXT", help="only the names that contain TEXT, in any case (implies --all)")
    p.add_argument("--state", action="store_true", help=f"with --all: whether each listed network can be loaded "
                   f"now, as without --all (at most {MAX_STATES} names; narrow them with --search)")
    p.add_argument("--json", action="store_true", help="one JSON object per line: name, state, detail "
                   "(with --all: name, and state and detail with --state)")


def models_run(args: argparse.Namespace) -> int:
    if not (args.all or args.search is not None):  # the zoo, each with whether it can be loaded now
        _print([(name, availability(name)) for name in list_models()], args.json)
        return OK
    names = architectures(args.search)  # a list of strings: nothing is built
    if not names:
        every = {n.lower(): n for n in architectures()}
        close = [every[c] for c in difflib.get_close_matches(args.search.lower(), list(every), n=3)]
        hint = f" Close: {', '.join(close)}." if close else ""
        raise CommandError(f"No architecture's name contains {args.search!r}.{hint}")
    if not args.state:
        for name in names:
            print(json.dumps({"name": name}) if args.json else name)
        return OK
    if len(names) > MAX_STATES:
        raise CommandError(f"--state tells at most {MAX_STATES} networks at a time (each is built to be asked), "
                           f"and {len(names)} are listed; narrow them with --search.")
    _print([(name, availability(name)) for name in names], args.json)
    return OK


def _print(rows, as_json: bool) -> None:
    width = max((len(n) for n, _ in rows), default=0)
    for name, a in rows:
        if as_json:
            print(json.dumps({"name": name, "state": a.state, "detail": a.detail}), flush=True)
        else:
            print(f"{name:<{width}}  {a.state:<11}  {a.detail}", flush=True)


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
