"""Occlusion (Zeiler & Fergus): slide a grey window over the picture and watch the class score drop.

The map equals Captum's `Occlusion` (window over all three colours): each pixel gets the average,
over every window position covering it, of (clean score - occluded score), score = the target logit.
Captum runs the whole network once per window position, and most of those runs repeat work; here,
on a CPU the occluded copies go through the incremental executor (`incremental`, which recomputes
only what each window changes), on a GPU through whichever of it and plain wide batches of whole
copies `_Race` finds faster on that card and network, and through plain batches wherever torch.fx
cannot trace the network (bench/README.md, "Occlusion", has the measurements behind each path).
"""
from __future__ import annotations

import copy
import math
import time
import weakref
from typing import Callable

import numpy as np
import torch
from torch import nn

from vislib import render
from vislib.attribution import incremental
from vislib.attribution.boxes import Box, gather
from vislib.attribution.common import prepare
from vislib.models import Model
from vislib.runtime import Progress, batch_size as batch_for, falls_back, report, within


# ---------------------------------------------------------------- window geometry (as Captum)

def positions(size: int, window: int, stride: int) -> list[int]:
    """Window starts along one side, as Captum places them (the last one may hang over the edge)."""
    if window < 1 or stride < 1:
        raise ValueError("The occlusion window and stride must be at least 1 pixel.")
    if window > size:
        raise ValueError(f"The occlusion window ({window} px) is larger than the picture ({size} px).")
    if stride > window and size > window:
        raise ValueError(f"The stride ({stride} px) must not be larger than the window ({window} px).")
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def occlusion_fill(x: torch.Tensor, baseline=0.0) -> torch.Tensor:
    """The occluder's colour in the network's normalised input, as a [1,C,1,1] tensor: a value
    (0.0, the default, is the training set's mean colour, the lecture's grey, for networks
    normalised by it), one per channel, or "mean" for this picture's own mean colour."""
    if isinstance(baseline, str):
        if baseline != "mean":
            raise ValueError(f"The occlusion fill {baseline!r} is neither a number nor \"mean\".")
        baseline = x.detach().mean((0, 2, 3))
    fill = torch.as_tensor(baseline, dtype=x.dtype).to(x.device)
    if fill.numel() not in (1, x.shape[1]):
        raise ValueError(f"The fill must be one number or one per colour channel ({x.shape[1]}).")
    return fill.reshape(1, -1, 1, 1).expand(1, x.shape[1], 1, 1)


def _assemble(drops: torch.Tensor, rows: list[int], cols: list[int], window: int, size) -> torch.Tensor:
    """Captum's map from the score drops [len(rows), len(cols)]: per pixel, the mean drop of the
    windows covering it; NaN drops (not evaluated) are left out."""
    total = torch.zeros(size, dtype=torch.float64)
    count = torch.zeros(size, dtype=torch.float64)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if not math.isnan(drops[i, j]):
                total[r:r + window, c:c + window] += drops[i, j]
                count[r:r + window, c:c + window] += 1
    return (total / count.clamp(min=1)).float()


TAIL_BATCH = 64  # copies a batch in the layers after the cut (whole small maps)


# ---------------------------------------------------------------- the score drops

def _batch_size(model: Model, x: torch.Tensor, wanted: int | None) -> int:
    """On a CPU 8 copies: their changed boxes stay in cache, while at 32 and more the early,
    high-resolution layers spill (bench/README.md); on a GPU as many as a share of its free memory
    holds (a forward pass keeps a few dozen maps the size of the input's first activations)."""
    if wanted:
        return wanted
    gpu = 64
    if model.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(model.device)
        gpu = int(max(16, min(1024, free // (x[0].numel() * 4 * 400))))
    return batch_for(model.device, cpu=8, gpu=gpu)


class _Race:
    """Which way of computing the same score drops, incremental or plain, runs a kind of job faster
    on this network and device: each way is tried `TRIES` times (the first run of either may carry
    one-off costs), then the faster kept. Why race: on a GPU the answer depends on the card and the
    network, and trying costs nothing, since either way gives the same map. The times are wall
    times, so a run slowed by other sessions' jobs in the device's queue can mislead the race: that
    costs speed, never the map."""
    TRIES = 2

    def __init__(self):
        self.seconds: dict = {}  # kind of job -> {by the executor?: [seconds of each run]}

    def pick(self, kind) -> bool:
        runs = self.seconds.get(kind, {})
        least = min((False, True), key=lambda way: len(runs.get(way, [])))
        if len(runs.get(least, [])) < self.TRIES:
            return least
        return min(runs[True]) < min(runs[False])

    def record(self, kind, executor: bool, seconds: float) -> None:
        self.seconds.setdefault(kind, {}).setdefault(executor, []).append(seconds)


_races: "weakref.WeakKeyDictionary[nn.Module, _Race]" = weakref.WeakKeyDictionary()


def _drops(model: Model, x: torch.Tensor, target: int, starts: list[tuple[int, int]], window: int, fill,
           out: torch.Tensor, batch_size: int, after_batch: Callable[[int], object] | None = None,
           use_executor: bool | None = None) -> bool:
    """Writes clean score - occluded score for each window start into `out` (x on the model's
    device). after_batch(number done) may return False to stop; returns whether all were done.
    Incremental on a CPU; elsewhere whichever way `_Race` finds faster."""
    race, kind = _races.setdefault(model.net, _Race()), (tuple(x.shape), window, len(starts), batch_size)
    if use_executor is None:
        use_executor = model.device.type == "cpu" or race.pick(kind)
    shared = incremental.executor_of(model) if use_executor else None
    started = time.perf_counter()  # wall time: the last batch's scores are read back, so the GPU has finished
    finished = _run_drops(model, x, target, starts, window, fill, out, batch_size, after_batch,
                          copy.copy(shared) if shared else None)
    if finished and model.device.type != "cpu":
        race.record(kind, shared is not None, time.perf_counter() - started)
    return finished


def _run_drops(model: Model, x: torch.Tensor, target: int, starts: list[tuple[int, int]], window: int, fill,
               out: torch.Tensor, batch_size: int, after_batch, engine: incremental.Executor | None) -> bool:
    """`_drops` one way: with `engine`, a shallow copy of the incremental executor, or plainly."""
    _, _, height, width = x.shape
    # The device is taken per batch, not for the whole map, so other sessions' short jobs go
    # between batches; the clean activations live in this job's own shallow copy of the engine.

    def boxes(chunk):
        # each window as a fixed-size box kept inside the picture; hanging windows are clipped
        a, b = (torch.tensor(v) for v in zip(*chunk))
        r, c = a.clamp(max=height - window), b.clamp(max=width - window)
        crops = gather(x[0], r, c, window, window)
        return r, c, _occluded_copies(crops, list(zip((a - r).tolist(), (b - c).tolist())), window, fill)

    with torch.inference_mode():
        with model.running() as net:
            clean = engine.clean(x) if engine else net(x)
        clean_score = float(clean[0, target])
        if engine is None:
            for first in range(0, len(starts), batch_size):
                chunk = starts[first:first + batch_size]
                batch = _occluded_copies(x, chunk, window, fill)
                with model.running() as net:
                    out[first:first + len(chunk)] = clean_score - net(batch)[:, target].double().cpu()
                if after_batch is not None and after_batch(first + len(chunk)) is False:
                    return first + len(chunk) == len(starts)
            return True
        # Small batches through the early layers, where the boxes are and the maps are large (they
        # stay in cache); then, from the cut on, the copies of several batches as one large batch:
        # the late layers' whole small maps run faster that way.
        with model.running():
            geometry = (tuple(x.shape), window, starts[0])
            if geometry not in engine.cuts:
                engine.cuts[geometry] = engine.cut(Box(*boxes(starts[:1])))
        cut = engine.cuts[geometry]
        tail_batch = max(batch_size, TAIL_BATCH)
        pending, first = [], 0
        for head_first in range(0, len(starts), batch_size):
            chunk = starts[head_first:head_first + batch_size]
            with model.running():
                pending.append(engine.live(engine.head(Box(*boxes(chunk)), cut), cut))
            done = head_first + len(chunk)
            if done - first < tail_batch and done < len(starts):
                continue
            env = {n: v if v is incremental.SAME else torch.cat([p[n] for p in pending])
                   for n, v in pending[0].items()}
            with model.running():
                scores = engine.tail(env, cut)[:, target]
            out[first:done] = clean_score - scores.double().cpu()
            pending, first = [], done
            if after_batch is not None and after_batch(done) is False:
                return done == len(starts)
    return True


def _occluded_copies(x: torch.Tensor, starts: list[tuple[int, int]], window: int, fill) -> torch.Tensor:
    """A copy of x [1,C,H,W] (or of x[k] of a batch) per window start with the window (clipped to
    the picture) filled: one masked `where`, not a copy per window, which on a GPU would be hundreds
    of tiny launches."""
    _, _, height, width = x.shape
    r, c = (torch.tensor(v, device=x.device)[:, None] for v in zip(*starts))
    rows, cols = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
    inside = ((rows >= r) & (rows < r + window))[:, :, None] & ((cols >= c) & (cols < c + window))[:, None, :]
    return torch.where(inside[:, None], fill, x)


def _after_batch(progress: Progress | None, offset: int, total: int, show: Callable[[], torch.Tensor],
                 place: Callable[[], object] = lambda: None) -> Callable[[int], bool]:
    """`_drops`'s after_batch for a part of a job (windows offset.. of total): places the scores
    made so far in the grid, then reports with the map so far as a heat map; False: stop now."""
    part = within(progress, offset, total)

    def after(done: int) -> bool:
        if part is None:
            return report(None, done, total)
        place()
        return report(part, done, total, preview=render.colorize(show(), cmap="RdBu_r"))
    return after


@falls_back
def occlusion(model: Model, x: torch.Tensor, target: int | None = None, window: int = 16, stride: int = 8,
              baseline=0.0, progress: Progress | None = None, batch_size: int | None = None) -> torch.Tensor:
    """The occlusion map [H,W] (CPU, float32) of class `target` (None: the top class) for a
    preprocessed batch of one; `baseline` is the occluder's colour (`occlusion_fill`).

    Reports after each batch with the map so far (`vislib.runtime.report`); when told to stop,
    the map averages the windows evaluated so far.
    """
    x, target = prepare(model, x, target)
    rows, cols = positions(x.shape[2], window, stride), positions(x.shape[3], window, stride)
    grid = torch.full((len(rows), len(cols)), math.nan, dtype=torch.float64)
    show = lambda: _assemble(grid, rows, cols, window, x.shape[2:])  # noqa: E731
    _drops(model, x, target, [(r, c) for r in rows for c in cols], window, occlusion_fill(x, baseline),
           grid.view(-1), _batch_size(model, x, batch_size), _after_batch(progress, 0, grid.numel(), show))
    return show()


def occlusion_preview(model: Model, x: torch.Tensor, target: int | None = None, window: int = 16, stride: int = 8,
                      baseline=0.0, progress: Progress | None = None,
                      refine: float = 0.2) -> tuple[torch.Tensor, dict]:
    """A quick approximation of `occlusion`'s map, and {"evaluations", "of", "correlation"}.

    Evaluates the windows of a coarse grid (about one window apart), fills in the others'
    score drops by bilinear interpolation, then evaluates exactly the `refine` share of the rest
    where the coarse drops around them differ most (the edges of what matters). "correlation"
    is the Pearson correlation with the exact map when known (1.0 when every window was
    evaluated), else None; bench/occlusion.py measures it.
    """
    x, target = prepare(model, x, target)
    rows, cols = positions(x.shape[2], window, stride), positions(x.shape[3], window, stride)
    fill, size = occlusion_fill(x, baseline), _batch_size(model, x, None)
    every = max(1, window // stride)
    coarse_r = sorted(set(range(0, len(rows), every)) | {len(rows) - 1})
    coarse_c = sorted(set(range(0, len(cols), every)) | {len(cols) - 1})
    grid = torch.full((len(rows), len(cols)), math.nan, dtype=torch.float64)
    coarse = torch.full((len(coarse_r), len(coarse_c)), math.nan, dtype=torch.float64)
    n_refine = int(round(refine * (grid.numel() - coarse.numel())))
    total = coarse.numel() + n_refine
    show = lambda: _assemble(grid, rows, cols, window, x.shape[2:])  # noqa: E731

    def place_coarse():
        grid[torch.tensor(coarse_r)[:, None], torch.tensor(coarse_c)[None, :]] = coarse
    finished = _drops(model, x, target, [(rows[i], cols[j]) for i in coarse_r for j in coarse_c], window, fill,
                      coarse.view(-1), size, _after_batch(progress, 0, total, show, place_coarse))
    place_coarse()
    if not finished or coarse.numel() == grid.numel():
        return show(), _info(grid, coarse.numel() == grid.numel())

    grid[:] = torch.from_numpy(_interpolate(coarse.numpy(), coarse_r, coarse_c, len(rows), len(cols)))
    ranking = torch.from_numpy(_spread(coarse.numpy(), coarse_r, coarse_c, len(rows), len(cols)))
    ranking[torch.tensor(coarse_r)[:, None], torch.tensor(coarse_c)[None, :]] = -math.inf
    chosen = ranking.view(-1).argsort(descending=True)[:n_refine]
    exact = grid.view(-1)[chosen].clone()
    starts = [(rows[i // len(cols)], cols[i % len(cols)]) for i in chosen.tolist()]

    def place_exact():
        grid.view(-1)[chosen] = exact
    _drops(model, x, target, starts, window, fill, exact, size, _after_batch(progress, coarse.numel(), total, show,
                                                                             place_exact))
    place_exact()
    return show(), _info(grid, False, coarse.numel() + n_refine)


def _info(grid: torch.Tensor, exact: bool, evaluations: int | None = None) -> dict:
    return {"evaluations": evaluations if evaluations is not None else int((~grid.isnan()).sum()),
            "of": grid.numel(), "correlation": 1.0 if exact else None}


def _interpolate(coarse: np.ndarray, at_r: list[int], at_c: list[int], n_r: int, n_c: int) -> np.ndarray:
    """Bilinear interpolation of values known at rows at_r x columns at_c onto the n_r x n_c grid."""
    along_c = np.stack([np.interp(np.arange(n_c), at_c, row) for row in coarse])
    return np.stack([np.interp(np.arange(n_r), at_r, col) for col in along_c.T], axis=1)


def _spread(coarse: np.ndarray, at_r: list[int], at_c: list[int], n_r: int, n_c: int) -> np.ndarray:
    """For each grid point, max - min of the coarse values at the corners of its coarse cell."""
    padded_r, padded_c = max(len(at_r) - 1, 1), max(len(at_c) - 1, 1)
    cells = np.zeros((padded_r, padded_c))
    for i in range(padded_r):
        for j in range(padded_c):
            corners = coarse[i:i + 2, j:j + 2]
            cells[i, j] = corners.max() - corners.min()
    cell_r = np.clip(np.searchsorted(at_r, np.arange(n_r), side="right") - 1, 0, padded_r - 1)
    cell_c = np.clip(np.searchsorted(at_c, np.arange(n_c), side="right") - 1, 0, padded_c - 1)
    return cells[cell_r[:, None], cell_c[None, :]]


def occlusion_curve(model: Model, x: torch.Tensor, target: int | None, row: int, window: int = 16, step: int = 4,
                    baseline=0.0, progress: Progress | None = None) -> tuple[list[int], list[float]]:
    """The target's probability as the window slides horizontally along `row` (its centre there).

    Returns the window centres' x coordinates and the probabilities (as far as it got when stopped).
    """
    x, target = prepare(model, x, target)
    _, _, height, width = x.shape
    top = min(max(0, row - window // 2), height - window)
    lefts = list(range(0, width - window + 1, step))
    copies = _occluded_copies(x, [(top, left) for left in lefts], window, occlusion_fill(x, baseline))
    probs: list[float] = []
    for batch in copies.split(_batch_size(model, x, None)):
        probs += model.probabilities(batch)[:, target].tolist()
        if not report(progress, len(probs), len(lefts)):
            break
    return [left + window // 2 for left in lefts[:len(probs)]], probs
