"""Classify many images in batches, keeping the network busy.

Decoding and resizing run in a small thread pool (Pillow releases the GIL while it decodes and
resamples), one batch ahead of the forward pass, so the network never waits for the disk or
for JPEG decoding. Results come back in the order of the inputs.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

import torch

from vislib.runtime import device_lock
from vislib.images import ImageError, load_image
from vislib.models.zoo import Model

Prediction = list[tuple[int, str, float]]  # (class index, label, probability), most probable first


def _prepare(model: Model, source) -> torch.Tensor | str:
    """The preprocessed tensor, or the ImageError's sentence (an error belongs to its image only)."""
    try:
        return model.preprocess(load_image(source))
    except ImageError as err:
        return str(err)


def _workers() -> int:
    # Enough threads to decode a batch faster than a GPU eats it; on a small CPU the forward
    # pass needs the cores, and there decoding is cheap next to it anyway.
    return max(1, min(8, (os.cpu_count() or 2)))


def _batches(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def batches_ahead(items: Iterable, prepare: Callable, batch_size: int) -> Iterator[tuple[list, list]]:
    """Yield (batch of items, their prepared values), preparing the next batch meanwhile.

    The one decoding pipeline of vislib: classification, feature extraction and patch search
    all read pictures through it.
    """
    batches = _batches(items, batch_size)
    with ThreadPoolExecutor(_workers(), thread_name_prefix="vislib-decode") as pool:
        def submit(batch: list) -> tuple[list, list[Future]]:
            return batch, [pool.submit(prepare, item) for item in batch]

        ahead = submit(next(batches, []))
        try:
            while ahead[0]:
                (batch, futures), ahead = ahead, submit(next(batches, []))
                yield batch, [f.result() for f in futures]
        finally:
            # A consumer that stops early should not wait for a batch nobody will read.
            for f in ahead[1]:
                f.cancel()


def classify(model: Model, sources: Iterable, top: int = 5, batch_size: int = 32) -> Iterator[tuple[object, Prediction | str]]:
    """Yield `(source, result)` for each source in order: the `top` predictions, or an error sentence.

    `sources` are whatever `load_image` takes (paths, bytes, binary files).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    k = max(1, min(top, len(model.labels)))
    for batch, prepared in batches_ahead(sources, lambda source: _prepare(model, source), batch_size):
        tensors = [x for x in prepared if isinstance(x, torch.Tensor)]
        rows = iter(())
        if tensors:
            with torch.inference_mode(), device_lock(model.device):
                probs, indices = model.probabilities(torch.stack(tensors)).topk(k, dim=1)
            rows = zip(probs.tolist(), indices.tolist())
        for source, x in zip(batch, prepared):
            if isinstance(x, str):
                yield source, x
            else:
                ps, ids = next(rows)
                yield source, [(i, model.labels[i], p) for p, i in zip(ps, ids)]
