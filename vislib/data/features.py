"""What a network makes of a whole collection: one feature vector per picture, cached on disk.

Pictures are read through the one decoding pipeline (vislib.data.batches). The forward pass
stops at the wanted layer, so early layers cost only the layers before them. Results are cached
as .npy files under $VISLIB_CACHE (else ~/.cache/vislib), keyed by the network's weights, the
layer and the collection's content, so a second visit is a file read.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from vislib.data.collections import Collection, cache_dir
from vislib.data.batches import chunks, prefetched
from vislib.runtime import Progress, batch_size as choose_batch, falls_back, report
from vislib.models import Model, fingerprint, penultimate

def default_batch(model: Model) -> int:
    """64 pictures a batch on a GPU; 16 on a CPU (about 0.4 s at 224 px on 2 cores)."""
    return choose_batch(model.device, cpu=16, gpu=64)


class _Reached(Exception):
    """Raised by the hook once the wanted layer has run: the rest of the network is not needed."""


def layer_output(model: Model, x: torch.Tensor, layer: str | None, reduce: Callable[[torch.Tensor], object]):
    """reduce(the layer's output) for a preprocessed batch (layer None: the classifier's input)."""
    return layer_outputs(model, x, [layer], lambda _name, t: reduce(t))[0]


def layer_outputs(model: Model, x: torch.Tensor, layers: Sequence[str | None],
                  reduce: Callable[[str | None, torch.Tensor], object]) -> list:
    """[reduce(name, that layer's output) for each of `layers`] for a preprocessed batch, in one pass.

    Each hook reduces on the model's device (a pooled vector or a top-k is small to move); once
    every layer has been seen the pass stops, so the layers after the deepest one never run. Runs
    inside model.running(); the hooks are removed in `finally`. A module the network calls twice
    counts with its first call.
    """
    modules = [model.module(penultimate(model) if name is None else name) for name in layers]
    kept: dict[int, object] = {}

    def keep(i: int, t: torch.Tensor):
        if i not in kept:
            kept[i] = reduce(layers[i], t.detach().float())
        if len(kept) == len(layers):
            raise _Reached

    with model.running() as net:
        handles = [module.register_forward_pre_hook(lambda _m, args, i=i: keep(i, args[0])) if name is None
                   else module.register_forward_hook(lambda _m, _i, out, i=i: keep(i, out))
                   for i, (name, module) in enumerate(zip(layers, modules))]
        try:
            with torch.inference_mode():
                net(x.to(model.device))
        except _Reached:
            pass
        finally:
            for handle in handles:
                handle.remove()
    return [kept[i] for i in range(len(layers))]


def _pooled(t: torch.Tensor) -> torch.Tensor:
    return (t.mean((2, 3)) if t.dim() == 4 else t.flatten(1)).cpu()


def _cached(name: str, compute: Callable[[], np.ndarray | None]) -> np.ndarray | None:
    """compute() once, then the file; a result of None (a stopped job) is not kept."""
    path = cache_dir("features") / f"{name}.npy"
    if path.exists():
        try:
            return np.load(path)
        except (OSError, ValueError):  # a damaged cache file is recomputed, not fatal
            pass
    result = compute()
    if result is None:
        return None
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, result)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return result


@falls_back
def extract(model: Model, collection: Collection, layer: str | None = None, batch_size: int | None = None,
            progress: Progress | None = None, engine: str = "local") -> np.ndarray:
    """Features [N,C] float32: the penultimate vector (layer None) or a layer's channels averaged over space.

    `progress(done, total)` is called after each batch; when it returns False, the features of the
    pictures done so far come back (fewer rows) and nothing is cached. Cached on disk: a second call
    reads the file. `engine="ray"` runs the pass on Ray (vislib.runtime.ray_pool), with the same result.
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"Unknown engine {engine!r}; choose local or ray.")
    batch = batch_size or default_batch(model)
    out = []

    def compute() -> np.ndarray | None:
        if engine == "ray":
            from vislib.runtime.ray_pool import map_chunks
            bounds = chunks(len(collection), batch)
            work = functools.partial(pooled_chunk, layer=layer, batch_size=batch)
            for (_, stop), part in zip(bounds, map_chunks(work, model, collection, bounds)):
                out.append(part)
                if not report(progress, stop, len(collection)):
                    return None
        else:
            for chunk, xs in prefetched(collection, model.preprocess, batch):
                out.append(layer_output(model, torch.stack(xs), layer, _pooled).numpy())
                if not report(progress, chunk[-1] + 1, len(collection)):
                    return None
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

    name = f"{model.name}-{layer or 'penultimate'}-{fingerprint(model)}-{collection.key}"
    found = _cached(name.replace("/", "_"), compute)
    return found if found is not None else np.concatenate(out).astype(np.float32)


def pooled_chunk(model: Model, collection: Collection, start: int, stop: int, *, layer: str | None,
                 batch_size: int) -> np.ndarray:
    """The features of pictures [start, stop), in batches counted from `start`: a Ray worker's part."""
    return np.concatenate([layer_output(model, torch.stack(xs), layer, _pooled).numpy() for _, xs in
                           prefetched(collection, model.preprocess, batch_size, range(start, stop))]).astype(np.float32)


def thumbnail(image: Image.Image, size: int = 64) -> Image.Image:
    """The picture's centre square scaled to size x size."""
    return ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.BILINEAR)


def pixels(collection: Collection, size: int = 32, batch_size: int = 256, progress: Progress | None = None) -> np.ndarray:
    """Raw pixels [N, size*size*3] float32 in [0, 1] of centre-square thumbnails: pixel space, for
    neighbours. Stopped by `progress` as `extract` is."""
    out = []

    def compute() -> np.ndarray | None:
        for chunk, tiles in prefetched(collection, lambda im: np.asarray(thumbnail(im, size)), batch_size):
            out.append(np.stack(tiles).reshape(len(tiles), -1).astype(np.float32) / 255)
            if not report(progress, chunk[-1] + 1, len(collection)):
                return None
        return np.concatenate(out)

    found = _cached(f"pixels{size}-{collection.key}", compute)
    return found if found is not None else np.concatenate(out)
