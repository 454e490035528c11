"""The atlas's one pass over a collection: for every channel of several layers at once, its top k
pictures (each by its strongest cell) and its activation statistics.

The pass runs in chunks of whole batches. A chunk's result (`ChunkResult`) is small - k values per
channel and a few sums - plus every picture's strongest activation per channel, which the caller
writes to disk; chunks fold into the running result with `LayerSummary.merge`, exactly and in
chunk order, so a pass split into chunks (a resumed build, or Ray workers each taking chunks) ends
bit for bit where one uninterrupted pass ends. Memory stays flat in the number of pictures.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vislib.data.batches import prefetched
from vislib.data.collections import Collection
from vislib.data.features import layer_outputs
from vislib.data.patches import EMPTY, TopState, best_of, picture_top
from vislib.models import Model, fingerprint


@dataclass
class LayerSummary:
    """One layer's result so far: the per-picture top k (a TopState) and per-channel sums.

    `total` and `squares` sum each picture's spatial mean of the channel and its square (float64,
    added in picture order); `peak` is the strongest cell seen; `positive` counts the pictures
    whose strongest cell is above zero (the unit fired somewhere in them)."""
    state: TopState
    total: np.ndarray
    squares: np.ndarray
    peak: np.ndarray
    positive: np.ndarray

    @property
    def pictures(self) -> int:
        return self.state.images_seen

    def merge(self, later: "LayerSummary") -> "LayerSummary":
        """This summary followed by a later chunk's: chunks of fixed bounds, folded in order, give the same bits."""
        return LayerSummary(self.state.merge(later.state), self.total + later.total, self.squares + later.squares,
                            np.maximum(self.peak, later.peak), self.positive + later.positive)

    def statistics(self) -> dict[str, list[float]]:
        """Per channel: mean and standard deviation of the spatial mean over the pictures, the peak
        and the fraction of pictures in which the channel fired."""
        n = max(self.pictures, 1)
        mean = self.total / n
        std = np.sqrt(np.maximum(self.squares / n - mean**2, 0.0))
        return {"mean": mean.tolist(), "std": std.tolist(), "peak": self.peak.tolist(),
                "fired": (self.positive / n).tolist()}


@dataclass
class ChunkResult:
    """What one chunk [start, stop) of the collection adds: a LayerSummary and, per layer, every
    picture's strongest activation per channel ([stop - start, C] float32)."""
    start: int
    stop: int
    summaries: dict[str, LayerSummary]
    maxima: dict[str, np.ndarray]


def empty(model: Model, layers: list[str], collection: Collection, k: int) -> dict[str, LayerSummary]:
    """The summaries before any picture: empty top-k slots and zero sums."""
    out = {}
    for name in layers:
        info = model.layer(name)
        c = info.channels
        state = TopState(fingerprint(model), name, collection.key, k, info.size,
                         np.full((c, k), -np.inf, np.float32), np.full((c, k), EMPTY, np.int64),
                         0, [], per_picture=True)
        out[name] = LayerSummary(state, np.zeros(c), np.zeros(c), np.full(c, -np.inf, np.float32), np.zeros(c, np.int64))
    return out


def _reduce(maps: torch.Tensor, first: torch.Tensor, k: int):
    """A batch [B,C,H,W] -> (top k values and positions [C,k], maxima [B,C], spatial means [B,C])."""
    values, positions = picture_top(maps, first, k)
    return values, positions, maps.flatten(2).amax(2).cpu(), maps.mean((2, 3)).double().cpu()


def run_chunk(model: Model, collection: Collection, start: int, stop: int, *, layers: list[str], k: int,
              batch_size: int) -> ChunkResult:
    """The pass over pictures [start, stop), in batches of `batch_size` counted from `start`."""
    key, fp = collection.key, fingerprint(model)
    parts: dict[str, list] = {name: [] for name in layers}
    for chunk, xs in prefetched(collection, model.preprocess, batch_size, range(start, stop)):
        first = torch.tensor(chunk, dtype=torch.int64)
        results = layer_outputs(model, torch.stack(xs), layers, lambda _name, t: _reduce(t, first, k))
        for name, result in zip(layers, results):
            parts[name].append(result)
    summaries, maxima = {}, {}
    for name in layers:
        info = model.layer(name)
        values = torch.cat([p[0] for p in parts[name]], 1)
        positions = torch.cat([p[1] for p in parts[name]], 1)
        values, positions = best_of(values, positions, k)
        peaks = torch.cat([p[2] for p in parts[name]]).numpy()
        means = torch.cat([p[3] for p in parts[name]]).numpy()
        state = TopState(fp, name, key, k, info.size, values.numpy(), positions.numpy(), stop - start,
                         [f"{start}-{stop - 1}"], per_picture=True)
        summaries[name] = LayerSummary(state, means.sum(0), (means**2).sum(0), peaks.max(0), (peaks > 0).sum(0))
        maxima[name] = peaks
    return ChunkResult(start, stop, summaries, maxima)

