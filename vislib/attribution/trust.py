"""Can the maps be trusted? Two checks that compare methods on one picture.

* The model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", 2018):
  re-initialise the network's weights cumulatively from the top and watch each map. A map that
  stays the same while the network forgets everything explains the picture, not the network.
* The deletion curve (Petsiuk et al., RISE, 2018): remove pixels in the order a map ranks them;
  the faster the class's probability falls, the more faithful the map (lower area = better).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from vislib.attribution import methods as attribution
from vislib.runtime import device_lock, falls_back
from vislib.models.zoo import Model


@dataclass
class RandomisationCheck:
    steps: list[str]                          # "original", then what was re-initialised at each step
    maps: dict[str, list[torch.Tensor]]       # method -> one map per step
    correlation: dict[str, list[float]]       # method -> Spearman rank correlation with the original map


def _stages(model: Model, net: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """The network's weighted modules grouped by catalogue stage, from the top (classifier) down.

    A module belongs to the first catalogue stage that finishes after it ran; what runs after the
    last stage is the classifier. Found by running the network once, because the catalogue names
    stages (which in VGG are parameter-free ReLUs), not the weights that feed them.
    """
    names = {info.name for info in model.layers()}
    order: list[tuple[str, nn.Module]] = []
    handles = [m.register_forward_hook(lambda m, i, o, n=n: order.append((n, m)))
               for n, m in net.named_modules() if n in names or _own_weights(m)]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, model.input_size, model.input_size, device=model.device))
    finally:
        for h in handles:
            h.remove()
    groups: list[tuple[str, list[nn.Module]]] = []
    pending: list[nn.Module] = []
    for name, module in order:
        if _own_weights(module) and module not in pending:
            pending.append(module)
        if name in names:
            groups.append((name, pending))
            pending = []
    groups.append(("classifier", pending))
    return [(name, modules) for name, modules in reversed(groups) if modules]


def _own_weights(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def _rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0  # a constant map ranks nothing, so it keeps nothing of the original's ranking
    return float(spearmanr(a.flatten().numpy(), b.flatten().numpy()).statistic)


@falls_back
def randomisation_check(model: Model, x: torch.Tensor, target: int | None, methods: list[str],
                        progress=None, seed: int = 0, **params) -> RandomisationCheck:
    """Maps of `methods` as the top stages of a copy of the network are re-initialised one by one.

    `params` maps a method name to its keyword arguments. `progress(step, total, preview=None,
    **info)` may return False to stop; the steps done so far are returned.
    """
    x, target = attribution._prepare(model, x, target)
    with device_lock(model.device):
        twin = dataclasses.replace(model, net=copy.deepcopy(model.net))  # never the shared network
    stages = _stages(twin, twin.net)
    result = RandomisationCheck(["original"], {m: [] for m in methods}, {m: [] for m in methods})

    def explain() -> None:
        for m in methods:
            result.maps[m].append(attribution.attribute(twin, x, m, target, **params.get(m, {})))
            result.correlation[m].append(_rank_correlation(result.maps[m][0], result.maps[m][-1]))

    explain()
    total = len(stages)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for step, (name, modules) in enumerate(stages, 1):
            if progress is not None and progress(step - 1, total) is False:
                break
            for module in modules:
                module.reset_parameters()
            result.steps.append(name)
            explain()
        else:
            if progress is not None:
                progress(total, total)
    return result


@dataclass
class DeletionCurve:
    fractions: list[float]   # fraction of the pixels removed
    scores: list[float]      # the target's probability then
    auc: float               # area under the curve: lower means a more faithful map


def deletion_curve(model: Model, x: torch.Tensor, target: int | None, attribution_map: torch.Tensor,
                   steps: int = 20, baseline="mean", batch_size: int = 16) -> DeletionCurve:
    """Set pixels to the baseline colour, most important first (by the map), in `steps` equal steps."""
    x, target = attribution._prepare(model, x, target)
    _, _, height, width = x.shape
    if tuple(attribution_map.shape) != (height, width):
        raise ValueError(f"The map is {tuple(attribution_map.shape)} but the picture is {(height, width)}.")
    order = attribution_map.flatten().argsort(descending=True, stable=True).to(x.device)
    fill = torch.as_tensor(attribution.occlusion_fill(x, baseline), dtype=x.dtype, device=x.device).reshape(-1, 1)
    counts = [round(k * height * width / steps) for k in range(steps + 1)]
    images = []
    for n in counts:
        flat = x[0].reshape(3, -1).clone()
        flat[:, order[:n]] = fill
        images.append(flat.reshape(1, 3, height, width))
    scores = torch.cat([model.probabilities(torch.cat(images[i:i + batch_size]))[:, target]
                        for i in range(0, len(images), batch_size)])
    fractions = [n / (height * width) for n in counts]
    return DeletionCurve(fractions, scores.tolist(), float(np.trapezoid(scores.numpy(), fractions)))


@falls_back
def deletion_curves(model: Model, x: torch.Tensor, target: int | None, maps: dict, steps: int = 20,
                    progress=None) -> dict[str, DeletionCurve]:
    """`deletion_curve` for each named map (tensors or arrays); `progress` as in `randomisation_check`."""
    curves = {}
    for i, (name, values) in enumerate(maps.items()):
        if progress is not None and progress(i, len(maps)) is False:
            break
        curves[name] = deletion_curve(model, x, target, torch.as_tensor(values), steps)
    else:
        if progress is not None:
            progress(len(maps), len(maps))
    return curves
