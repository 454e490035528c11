"""Maximally activating patches: for each channel of a layer, the image regions that excite it most.

ONE pass over the collection keeps, for EVERY channel at once, its k strongest (image, cell)
pairs: each batch's map [B,C,H,W] is reduced on the device to its top k per channel and merged
with the running top k, so memory stays k values per channel however large the collection.
Ties are broken by position (earlier image, then earlier cell), which makes the top k a
function of the set of candidates alone: states computed on shards of a collection merge into
exactly the single-pass state, in any order and grouping. A patch is the cell's receptive field
(LayerInfo.box) cut from the preprocessed picture.

With `per_picture`, each picture competes with its strongest cell only (the first such cell on a
tie), so a channel's k examples are k different pictures, as the lecture shows a unit's dataset
examples; otherwise one picture may fill several slots with neighbouring cells.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vislib.data.collections import Collection, cache_dir
from vislib.data.batches import chunks, prefetched
from vislib.data.features import default_batch, layer_output
from vislib.runtime import Progress, falls_back, report
from vislib.models import Model, fingerprint

EMPTY = np.iinfo(np.int64).max  # the position of an empty slot: sorts after every real one


@dataclass(frozen=True)
class Patch:
    index: int                           # position in the collection
    box: tuple[int, int, int, int]       # (x0, y0, x1, y1) in the preprocessed input's pixels
    activation: float
    image: Image.Image                   # the crop
    cell: tuple[int, int]                # (row, col) in the layer's map


@dataclass
class TopState:
    """Per channel, the k strongest cells seen: values [C,k] (highest first) and positions [C,k].

    A position is image index * cells + cell (cells = H*W of the layer's map); empty slots hold
    -inf and EMPTY. `model` is the network's fingerprint, `collection` the collection's key;
    `per_picture`: one entry per picture (its strongest cell).
    """
    model: str
    layer: str
    collection: str
    k: int
    map_size: tuple[int, int]
    values: np.ndarray
    positions: np.ndarray
    images_seen: int = 0
    shards: list[str] = field(default_factory=list)
    per_picture: bool = False

    def _kind(self) -> tuple:
        return self.model, self.layer, self.collection, self.k, tuple(self.map_size), self.per_picture

    @property
    def channels(self) -> int:
        return self.values.shape[0]

    def merge(self, other: "TopState") -> "TopState":
        if self._kind() != other._kind():
            raise ValueError("These patch states do not belong together (different network, layer, "
                             "collection, k or kind); merge only shards of one run.")
        values, positions = best_of(torch.from_numpy(np.concatenate([self.values, other.values], 1)),
                                  torch.from_numpy(np.concatenate([self.positions, other.positions], 1)), self.k)
        return TopState(self.model, self.layer, self.collection, self.k, tuple(self.map_size), values.numpy(),
                        positions.numpy(), self.images_seen + other.images_seen, sorted(self.shards + other.shards),
                        self.per_picture)

    def save(self, path) -> None:
        np.savez(path, values=self.values, positions=self.positions, k=self.k, map_size=np.asarray(self.map_size),
                 images_seen=self.images_seen, meta=np.asarray([self.model, self.layer, self.collection]),
                 shards=np.asarray(self.shards, dtype=str), per_picture=self.per_picture)

    @classmethod
    def load(cls, path) -> "TopState":
        if not Path(path).is_file():
            raise ValueError(f"There is no patch state file named {path}.")
        try:
            with np.load(path, allow_pickle=False) as z:
                model, layer, collection = (str(s) for s in z["meta"])
                return cls(model, layer, collection, int(z["k"]), tuple(int(v) for v in z["map_size"]),
                           z["values"], z["positions"], int(z["images_seen"]), [str(s) for s in z["shards"]],
                           bool(z["per_picture"]) if "per_picture" in z else False)
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path} is not a patch state saved by `python -m vislib patches`.") from err


def best_of(values: torch.Tensor, positions: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best of each row by (value descending, position ascending): two stable sorts."""
    positions, order = positions.sort(dim=1, stable=True)
    values = values.gather(1, order)
    values, order = values.sort(dim=1, descending=True, stable=True)
    return values[:, :k], positions.gather(1, order)[:, :k]


def cell_top(maps: torch.Tensor, first: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best cells per channel of a batch [B,C,H,W] whose images sit at positions `first` [B].

    topk alone picks arbitrarily among values tied with the k-th; those ties (dead channels are
    all zeros) are settled here by position, so that the result does not depend on batching.
    """
    b, c, h, w = maps.shape
    x = maps.permute(1, 0, 2, 3).reshape(c, b * h * w)          # position order: image, then cell
    pos = (first.to(x.device)[:, None] * (h * w) + torch.arange(h * w, device=x.device)).reshape(-1)
    kk = min(k, x.shape[1])
    threshold = x.topk(kk, dim=1).values[:, -1:]
    above = x > threshold
    tied = x == threshold
    need = kk - above.sum(1, keepdim=True)
    chosen = above | (tied & (tied.cumsum(1) <= need))          # exactly kk per channel
    cols = chosen.nonzero()[:, 1].reshape(c, kk)                 # row-major: positions ascending
    return padded(*best_of(x.gather(1, cols), pos[cols], kk), k)


def picture_top(maps: torch.Tensor, first: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each picture's strongest cell per channel (the first on a tie), then the batch's k best
    pictures per channel, for a batch [B,C,H,W] whose images sit at positions `first` [B]."""
    b, c, h, w = maps.shape
    flat = maps.reshape(b, c, h * w)
    cells = flat.argmax(dim=2)                                   # the first maximal cell
    values = flat.gather(2, cells[..., None])[..., 0]
    positions = first.to(maps.device)[:, None] * (h * w) + cells  # [B,C]
    return padded(*best_of(values.T, positions.T, min(k, b)), k)


def padded(values: torch.Tensor, positions: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[C,kk] best values and positions on the CPU, padded with empty slots to [C,k]."""
    c, kk = values.shape
    if kk < k:
        values = torch.cat([values, values.new_full((c, k - kk), -torch.inf)], 1)
        positions = torch.cat([positions, positions.new_full((c, k - kk), EMPTY)], 1)
    return values.float().cpu(), positions.cpu()


@falls_back
def top_state(model: Model, layer: str, collection: Collection, k: int = 9, indices=None,
              batch_size: int | None = None, progress: Progress | None = None, per_picture: bool = False,
              engine: str = "local") -> TopState:
    """One pass over the collection (or the positions `indices` of it): the top k of every channel
    (of cells, or with `per_picture` of pictures, each by its strongest cell). `engine="ray"` runs
    the whole collection's pass on Ray in chunks folded with the exact merge: the same state."""
    if engine == "ray":
        return _on_ray(model, layer, collection, k, batch_size or default_batch(model), progress, per_picture)
    if engine != "local":
        raise ValueError(f"Unknown engine {engine!r}; choose local or ray.")
    info = model.layer(layer)
    c, (h, w) = info.channels, info.size
    values = torch.full((c, k), -torch.inf)
    positions = torch.full((c, k), EMPTY, dtype=torch.int64)
    positions_all = range(len(collection)) if indices is None else indices
    done = 0
    for chunk, xs in prefetched(collection, model.preprocess, batch_size or default_batch(model), positions_all):
        first = torch.tensor(chunk, dtype=torch.int64)
        reduce = picture_top if per_picture else cell_top
        bv, bp = layer_output(model, torch.stack(xs), layer, lambda t: reduce(t, first, k))
        values, positions = best_of(torch.cat([values, bv], 1), torch.cat([positions, bp], 1), k)
        done += len(chunk)
        if not report(progress, done, len(positions_all)):
            break  # stopped: the state of the pictures seen so far (images_seen says how many)
    shard = f"{min(positions_all)}-{max(positions_all)}" if len(positions_all) else "empty"
    return TopState(fingerprint(model), layer, collection.key, k, (h, w), values.numpy(), positions.numpy(),
                    done, [shard], per_picture)


def _on_ray(model: Model, layer: str, collection: Collection, k: int, batch: int, progress, per_picture: bool):
    from vislib.runtime.ray_pool import map_chunks
    model.layer(layer)  # LayerError here, not in a worker
    bounds = chunks(len(collection), batch)
    work = functools.partial(_chunk_state, layer=layer, k=k, batch_size=batch, per_picture=per_picture)
    state = None
    for (_, stop), part in zip(bounds, map_chunks(work, model, collection, bounds)):
        state = part if state is None else state.merge(part)
        if not report(progress, stop, len(collection)):
            break
    return state if state is not None else top_state(model, layer, collection, k, batch_size=batch,
                                                     per_picture=per_picture)


def _chunk_state(model: Model, collection: Collection, start: int, stop: int, *, layer: str, k: int,
                 batch_size: int, per_picture: bool) -> TopState:
    return top_state(model, layer, collection, k, range(start, stop), batch_size, per_picture=per_picture)


def _cache_path(model: Model, layer: str, collection: Collection, k: int, per_picture: bool) -> Path:
    kind = "pictures" if per_picture else "cells"
    return cache_dir("patches") / f"{model.name}-{layer}-k{k}-{kind}-{fingerprint(model)}-{collection.key}.npz".replace(
        "/", "_")


def saved_state(model: Model, layer: str, collection: Collection, k: int = 9, per_picture: bool = False) -> TopState | None:
    """The state cached_state saved earlier, or None (a damaged file counts as none)."""
    path = _cache_path(model, layer, collection, k, per_picture)
    try:
        return TopState.load(path) if path.exists() else None
    except ValueError:
        return None


def cached_state(model: Model, layer: str, collection: Collection, k: int = 9, progress: Progress | None = None,
                 per_picture: bool = False, engine: str = "local") -> TopState:
    """top_state over the whole collection, kept on disk (one file for every channel of the layer)."""
    found = saved_state(model, layer, collection, k, per_picture)
    if found is not None:
        return found
    path = _cache_path(model, layer, collection, k, per_picture)
    state = top_state(model, layer, collection, k, progress=progress, per_picture=per_picture, engine=engine)
    if state.images_seen < len(collection):  # stopped part-way: shown, but not kept
        return state
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    state.save(tmp)
    os.replace(tmp, path)
    return state


def patches(state: TopState, model: Model, collection: Collection, channel: int, k: int | None = None) -> list[Patch]:
    """The top patches of one channel of a state, highest first, cut from the preprocessed pictures."""
    if not 0 <= channel < state.channels:
        raise ValueError(f"Layer {state.layer} has channels 0 to {state.channels - 1}; there is no channel {channel}.")
    info = model.layer(state.layer)
    cells = state.map_size[0] * state.map_size[1]
    out = []
    for value, position in zip(state.values[channel][:k], state.positions[channel][:k]):
        if position == EMPTY:
            break
        index, cell = divmod(int(position), cells)
        row, col = divmod(cell, state.map_size[1])
        box = info.box(row, col, model.input_size)
        seen = model.to_image(model.preprocess(collection[index][0]))
        out.append(Patch(index, box, float(value), seen.crop(box), (row, col)))
    return out


def top_patches(model: Model, layer: str, channel: int, collection: Collection, k: int = 9,
                per_picture: bool = False) -> list[Patch]:
    """The k patches of the collection that excite `channel` of `layer` most, highest first (with
    `per_picture`, from k different pictures: each picture's strongest cell)."""
    return patches(cached_state(model, layer, collection, k, per_picture=per_picture), model, collection, channel)
