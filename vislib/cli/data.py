"""The command-line side of collections: `train-fashion` and `patches` (each an entry of cli.COMMANDS)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vislib.cli.common import OK, CommandError, model_args, open_model, positive, writable_file


# ---------------------------------------------------------------- train-fashion

def train_args(p: argparse.ArgumentParser) -> None:
    from vislib.models.fashion import WEIGHTS
    p.add_argument("--epochs", type=positive, default=6, help="passes over the 60,000 training pictures (default: 6)")
    p.add_argument("--seed", type=int, default=0, help="fixes the initial weights and the batch order (default: 0)")
    p.add_argument("--threads", type=positive, default=2, help="CPU threads (default: 2)")
    p.add_argument("--out", type=Path, default=WEIGHTS, help="the .safetensors file to write; its accuracy goes "
                   "beside it as .json (default: %(default)s)")


def train_run(args: argparse.Namespace) -> int:
    import torch
    from vislib.models import fashion
    writable_file(args.out, (".safetensors",))  # before the minutes of training, not after

    def progress(step, total, **info):
        print(f"step {step}/{total}  epoch {info['epoch']}  loss {info['loss']:.3f}", file=sys.stderr, flush=True)

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # and back afterwards: main() may run inside another program
    try:
        net, report = fashion.train(epochs=args.epochs, seed=args.seed, progress=progress)
    finally:
        torch.set_num_threads(threads)
    fashion.save(net, report, args.out)
    print(f"test accuracy {report['test_accuracy']:.4f} after {report['seconds']:.0f} s; wrote {args.out}")
    return OK


# ---------------------------------------------------------------- patches

def patches_args(p: argparse.ArgumentParser) -> None:
    model_args(p)
    p.add_argument("--layer", help="a layer name (see the Activation maps page), e.g. blocks.3.0")
    p.add_argument("--collection", metavar="SRC", help="a folder, a .zip, samples, fashion-mnist, imagenette or cifar-10")
    p.add_argument("--k", type=positive, default=9, help="patches kept per channel (default: 9)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local, or ray: the pass on RAY_ADDRESS's cluster, else a local Ray (default: local)")
    p.add_argument("--batch-size", type=positive, default=None, metavar="N",
                   help="pictures a batch (default: 64 on a GPU, 16 on a CPU)")
    p.add_argument("--out", type=Path, help="write the state (every channel's top k) to this .npz")
    p.add_argument("--state", type=Path, help="render from this saved state instead of computing one")
    p.add_argument("--channel", type=int, action="append", help="render this channel's patches (repeatable)")
    p.add_argument("--png", type=Path, metavar="DIR", help="folder for the rendered patches (with --channel)")


def patches_run(args: argparse.Namespace) -> int:
    if not args.collection:
        raise CommandError("Give --collection (a folder, a .zip, samples, fashion-mnist, imagenette or cifar-10).")
    if not args.out and not args.channel:
        raise CommandError("Give --out to save the state, or --channel and --png to render patches.")
    if args.channel and not args.png:
        raise CommandError("--channel needs --png, the folder to write the patches to.")
    if args.out:
        writable_file(args.out, (".npz",))
    from vislib.data.collections import open_collection
    from vislib.data.patches import TopState, cached_state, patches, top_state
    collection = open_collection(args.collection)
    model = open_model(args)
    state = TopState.load(args.state) if args.state else None
    layer = state.layer if state else args.layer
    if not layer:
        raise CommandError(f"Give --layer, one of {model.name}'s layers: {', '.join(i.name for i in model.layers())}.")
    channels = model.layer(layer).channels  # LayerError (one sentence) for a layer it does not have
    for channel in args.channel or []:  # checked before the pass over the collection, not after
        if not 0 <= channel < channels:
            raise CommandError(f"Layer {layer} of {model.name} has channels 0 to {channels - 1}; "
                               f"there is no channel {channel}.")
    if state is None:
        def progress(done, total):
            print(f"{done}/{total} pictures", file=sys.stderr, flush=True)
        if args.out:
            state = top_state(model, layer, collection, args.k, None, args.batch_size, progress, engine=args.engine)
        else:
            state = cached_state(model, layer, collection, args.k, progress, engine=args.engine)
    if args.out:
        state.save(args.out)
        print(f"wrote the top {state.k} of {state.channels} channels over {state.images_seen} pictures to {args.out}")
    for channel in args.channel or []:
        _render(patches(state, model, collection, channel), args.png, f"{layer}-ch{channel}")
    return OK


def _render(found, folder: Path, stem: str) -> None:
    from vislib import render
    folder.mkdir(parents=True, exist_ok=True)
    for rank, patch in enumerate(found, 1):
        patch.image.save(folder / f"{stem}-{rank}-img{patch.index}-{patch.activation:.3f}.png")
    sheet = render.grid([render.enlarge(p.image, 96).resize((96, 96)) for p in found], cols=min(len(found), 9))
    sheet.save(folder / f"{stem}.png")
    print(f"wrote {len(found)} patches and {stem}.png to {folder}")
