"""What a network makes of a whole collection: one feature vector per picture, cached on disk.

Pictures are decoded and preprocessed in a thread pool one batch ahead of the network (Pillow
releases the GIL while it decodes and resizes; threads, unlike DataLoader worker processes, need
no pickling of the collection and no fork of a server process full of threads). The forward pass
stops at the wanted layer, so early layers cost only the layers before them. Results are cached
as .npy files under $VISLIB_CACHE (else ~/.cache/vislib), keyed by the network's weights, the
layer and the collection's content, so a second visit is a file read.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from vislib.data.collections import Collection, cache_dir
from vislib.runtime import device_lock, falls_back
from vislib.models.zoo import Model, family
from vislib.data.predict import batches_ahead

Progress = Callable[..., object] | None


def prefetched(collection: Collection, prepare: Callable[[Image.Image], object], batch_size: int,
               indices: Sequence[int] | None = None) -> Iterator[tuple[list[int], list]]:
    """Yield (positions, prepared pictures) batch by batch, preparing the next batch meanwhile."""
    positions = range(len(collection)) if indices is None else indices
    return batches_ahead(positions, lambda i: prepare(collection[i][0]), batch_size)


def default_batch(model: Model) -> int:
    """64 pictures a batch on a GPU; 16 on a CPU, where a batch of 224 px pictures takes about
    0.4 s on 2 cores, so a stop (taken between batches) never waits long."""
    return 64 if model.device.type != "cpu" else 16


class _Reached(Exception):
    """Raised by the hook once the wanted layer has run: the rest of the network is not needed."""


def penultimate(model: Model) -> str:
    """The classifier module, whose INPUT is the penultimate feature vector (one rule for every family)."""
    return family(model.arch).classifier.rsplit(".", 1)[0]


def layer_output(model: Model, x: torch.Tensor, layer: str | None, reduce: Callable[[torch.Tensor], object]):
    """reduce(the layer's output) for a preprocessed batch (layer None: the classifier's input).

    The hook reduces on the model's device (a pooled vector or a top-k is small to move) and then
    stops the forward pass. Runs under the device lock; the hook is removed in `finally`.
    """
    name = penultimate(model) if layer is None else layer
    modules = dict(model.net.named_modules())
    if name not in modules:
        raise KeyError(f"{model.name} has no layer named {name!r}")
    kept = []

    def keep(t: torch.Tensor):
        kept.append(reduce(t.detach().float()))
        raise _Reached

    module = modules[name]
    with device_lock(model.device):
        handle = (module.register_forward_pre_hook(lambda _m, args: keep(args[0])) if layer is None
                  else module.register_forward_hook(lambda _m, _i, out: keep(out)))
        try:
            with torch.inference_mode():
                model.net(x.to(model.device))
        except _Reached:
            pass
        finally:
            handle.remove()
    return kept[0]


def _pooled(t: torch.Tensor) -> torch.Tensor:
    return (t.mean((2, 3)) if t.dim() == 4 else t.flatten(1)).cpu()


def fingerprint(model: Model) -> str:
    """A short hash that tells networks apart: name, architecture, input size, first and last weights."""
    h = hashlib.sha1(f"{model.name}|{model.arch}|{model.preprocessing}".encode())
    state = model.net.state_dict()
    for key in (f"{model.first_conv}.weight", family(model.arch).classifier):
        if key in state:
            h.update(state[key].detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _cached(name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    path = cache_dir("features") / f"{name}.npy"
    if path.exists():
        try:
            return np.load(path)
        except (OSError, ValueError):  # a damaged cache file is recomputed, not fatal
            pass
    result = compute()
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, result)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return result


@falls_back
def extract(model: Model, collection: Collection, layer: str | None = None, batch_size: int | None = None,
            progress: Progress = None) -> np.ndarray:
    """Features [N,C] float32: the penultimate vector (layer None) or a layer's channels averaged over space.

    `progress(done, total)` is called after each batch. Cached on disk: a second call reads the file.
    """
    def compute() -> np.ndarray:
        out = []
        for chunk, xs in prefetched(collection, model.preprocess, batch_size or default_batch(model)):
            out.append(layer_output(model, torch.stack(xs), layer, _pooled).numpy())
            if progress:
                progress(chunk[-1] + 1, len(collection))
        return np.concatenate(out).astype(np.float32)

    name = f"{model.name}-{layer or 'penultimate'}-{fingerprint(model)}-{collection.key}"
    return _cached(name.replace("/", "_"), compute)


def thumbnail(image: Image.Image, size: int = 64) -> Image.Image:
    """The picture's centre square scaled to size x size."""
    return ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.BILINEAR)


def pixels(collection: Collection, size: int = 32, batch_size: int = 256, progress: Progress = None) -> np.ndarray:
    """Raw pixels [N, size*size*3] float32 in [0, 1] of centre-square thumbnails: pixel space, for neighbours."""
    def compute() -> np.ndarray:
        out = []
        for chunk, tiles in prefetched(collection, lambda im: np.asarray(thumbnail(im, size)), batch_size):
            out.append(np.stack(tiles).reshape(len(tiles), -1).astype(np.float32) / 255)
            if progress:
                progress(chunk[-1] + 1, len(collection))
        return np.concatenate(out)

    return _cached(f"pixels{size}-{collection.key}", compute)
