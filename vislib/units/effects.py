"""What a unit does to the network's decision: the class scores with and without it."""
from __future__ import annotations

import numpy as np
import torch

from vislib.data.batches import prefetched
from vislib.data.collections import Collection
from vislib.data.features import default_batch
from vislib.models import Model
from vislib.runtime import Progress, report


def class_effects(model: Model, layer: str, channel: int, collection: Collection, batch_size: int | None = None,
                  progress: Progress | None = None) -> np.ndarray:
    """How much each class's score drops when the unit is silenced (its map set to zero), averaged
    over the collection: [classes]. Positive: the unit pushes that class up. An ablation, not a
    gradient: it answers "what if this unit were gone", which needs no linear approximation."""
    module = model.module(layer)
    info = model.layer(layer)
    if not 0 <= channel < info.channels:
        raise ValueError(f"{layer} has channels 0 to {info.channels - 1}; there is no channel {channel}.")

    def silence(_m, _i, out):
        out = out.clone()
        out[:, channel] = 0
        return out

    total, seen = torch.zeros(len(model.labels), dtype=torch.float64), 0
    for chunk, xs in prefetched(collection, model.preprocess, batch_size or default_batch(model)):
        x = torch.stack(xs).to(model.device)
        with torch.inference_mode(), model.running() as net:
            plain = net(x).float()
            handle = module.register_forward_hook(silence)
            try:
                silenced = net(x).float()
            finally:
                handle.remove()
        total += (plain - silenced).double().sum(0).cpu()
        seen += len(chunk)
        if not report(progress, seen, len(collection)):
            break
    return (total / max(seen, 1)).numpy()
