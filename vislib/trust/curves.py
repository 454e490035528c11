"""Deletion and insertion curves (Petsiuk et al., "RISE", 2018): how fast the class's probability
falls when the pixels a map ranks highest are removed, or rises when they are put back.

* deletion: the picture, then its pixels set to a baseline colour (the picture's mean colour,
  unless told otherwise), most important first; the faster the probability falls, the more
  faithful the map: a LOWER area is better;
* insertion: a blurred copy of the picture (Gaussian, 11 px, sigma 5, as the paper's code), then
  the original pixels put back, most important first; a HIGHER area is better.

Both are one implementation: copy k of the picture takes its first n_k pixels (in the map's order)
from the "end" picture and the rest from the "start" picture, in `steps` equal steps; the copies
go through the network in batches inside `Model.probabilities` (the device queue). The area is the
trapezoid rule over the fraction of pixels changed (0 to 1), as the paper's `auc`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur

from vislib.attribution.common import prepare
from vislib.attribution.perturbation import occlusion_fill
from vislib.models import Model
from vislib.runtime import Progress, batch_size as batch_for, falls_back, within, report

KINDS = ("deletion", "insertion")
BLUR = (11, 5.0)  # kernel size and sigma of the insertion's blurred start, as RISE's code


@dataclass
class Curve:
    fractions: list[float]   # fraction of the pixels removed (deletion) or inserted (insertion)
    scores: list[float]      # the target's probability then
    auc: float               # area under the curve: lower is better for deletion, higher for insertion


DeletionCurve = Curve  # the earlier name


def blurred(x: torch.Tensor) -> torch.Tensor:
    """The insertion curve's start: x [1,3,H,W] blurred (kernel 11, sigma 5; smaller pictures a
    kernel that fits)."""
    size = min(BLUR[0], (min(x.shape[2:]) - 1) // 2 * 2 + 1)  # odd, and not larger than the picture
    return gaussian_blur(x, [size, size], [BLUR[1], BLUR[1]])


def _ends(kind: str, x: torch.Tensor, baseline) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, end) pictures of a curve of `kind`."""
    if kind == "deletion":
        return x, occlusion_fill(x, baseline).expand_as(x)
    if kind == "insertion":
        return blurred(x), x
    raise ValueError(f"A curve is one of {', '.join(KINDS)}, not {kind!r}.")


def _curve(model: Model, x: torch.Tensor, target: int, amap: torch.Tensor, kind: str, steps: int, baseline,
           batch_size: int | None, progress: Progress | None) -> tuple[Curve, bool]:
    """The curve, and False when it was told to stop (the curve then ends where it got to)."""
    _, _, height, width = x.shape
    if tuple(amap.shape) != (height, width):
        raise ValueError(f"The map is {tuple(amap.shape)} but the picture is {(height, width)}.")
    if steps < 1:
        raise ValueError(f"A curve needs at least 1 step, not {steps}.")
    start, end = _ends(kind, x, baseline)
    order = amap.flatten().argsort(descending=True, stable=True).to(x.device)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=x.device)  # each pixel's place in the map's order
    rank = rank.reshape(1, 1, height, width)
    counts = [round(k * height * width / steps) for k in range(steps + 1)]
    size = batch_size or batch_for(model.device, cpu=16, gpu=64)
    scores: list[float] = []
    going = True
    while going and len(scores) < len(counts):
        n = torch.tensor(counts[len(scores):len(scores) + size], device=x.device).reshape(-1, 1, 1, 1)
        scores += model.probabilities(torch.where(rank < n, end, start))[:, target].tolist()
        going = report(progress, len(scores), len(counts))
    fractions = [n / (height * width) for n in counts[:len(scores)]]
    return Curve(fractions, scores, float(np.trapezoid(scores, fractions))), going


def curve(model: Model, x: torch.Tensor, target: int | None, amap: torch.Tensor, kind: str = "deletion",
          steps: int = 20, baseline="mean", batch_size: int | None = None, progress: Progress | None = None) -> Curve:
    """The deletion or insertion curve (`kind`) of a map [H,W] for x [1,3,H,W] and class `target`
    (None: the top class), in `steps` equal steps; `baseline` is deletion's colour (`occlusion_fill`).
    Reports after each batch; when told to stop, the curve ends where it got to."""
    x, target = prepare(model, x, target)
    return _curve(model, x, target, torch.as_tensor(amap), kind, steps, baseline, batch_size, progress)[0]


def deletion_curve(model: Model, x: torch.Tensor, target: int | None, attribution_map: torch.Tensor,
                   steps: int = 20, baseline="mean", batch_size: int | None = None,
                   progress: Progress | None = None) -> Curve:
    """Set pixels to the baseline colour, most important first (by the map), in `steps` equal steps.

    Reports after each batch; when told to stop, the curve ends where it got to."""
    return curve(model, x, target, attribution_map, "deletion", steps, baseline, batch_size, progress)


def insertion_curve(model: Model, x: torch.Tensor, target: int | None, attribution_map: torch.Tensor,
                    steps: int = 20, batch_size: int | None = None, progress: Progress | None = None) -> Curve:
    """Put the picture's pixels back into its blurred copy, most important first, in `steps` steps."""
    return curve(model, x, target, attribution_map, "insertion", steps, "mean", batch_size, progress)


@falls_back
def curves(model: Model, x: torch.Tensor, target: int | None, maps: dict, kinds=KINDS, steps: int = 20,
           progress: Progress | None = None) -> dict[str, dict[str, Curve]]:
    """{kind: {name: curve}} for each named map (tensors or arrays) and each kind; reports after
    each batch, and when told to stop returns the curves drawn to the end."""
    x, target = prepare(model, x, target)
    out: dict[str, dict[str, Curve]] = {kind: {} for kind in kinds}
    total, done = len(maps) * len(kinds) * (steps + 1), 0
    for kind in kinds:
        for name, values in maps.items():
            drawn, going = _curve(model, x, target, torch.as_tensor(values), kind, steps, "mean", None,
                                  within(progress, done, total))
            done += steps + 1
            if len(drawn.scores) == steps + 1:
                out[kind][name] = drawn
            if not going:
                return out
    return out


def deletion_curves(model: Model, x: torch.Tensor, target: int | None, maps: dict, steps: int = 20,
                    progress: Progress | None = None) -> dict[str, Curve]:
    """`deletion_curve` for each named map (tensors or arrays); reports after each batch, and when
    told to stop returns the curves drawn to the end."""
    return curves(model, x, target, maps, ("deletion",), steps, progress)["deletion"]
