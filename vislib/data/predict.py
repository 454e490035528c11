"""Classify many images in batches, keeping the network busy (decoding runs a batch ahead:
vislib.data.batches). Results come back in the order of the inputs."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from vislib.data.batches import batches_ahead
from vislib.images import ImageError, load_image
from vislib.models import Model

Prediction = list[tuple[int, str, float]]  # (class index, label, probability), most probable first


def _prepare(model: Model, source) -> torch.Tensor | str:
    """The preprocessed tensor, or the ImageError's sentence (an error belongs to its image only)."""
    try:
        return model.preprocess(load_image(source))
    except ImageError as err:
        return str(err)


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
            probs, indices = model.probabilities(torch.stack(tensors)).topk(k, dim=1)
            rows = zip(probs.tolist(), indices.tolist())
        for source, x in zip(batch, prepared):
            if isinstance(x, str):
                yield source, x
            else:
                ps, ids = next(rows)
                yield source, [(i, model.labels[i], p) for p, i in zip(ps, ids)]
