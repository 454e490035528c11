"""The model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", 2018):
re-initialise the network's weights cumulatively from the top and watch each map. A map that stays
the same while the network forgets everything explains the picture, not the network.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from scipy.stats import spearmanr
from torch import nn

from vislib.attribution.common import prepare, seeded
from vislib.attribution.registry import attribute
from vislib.models import Model
from vislib.runtime import Progress, falls_back, report


@dataclass
class RandomisationCheck:
    steps: list[str]                          # "original", then what was re-initialised at each step
    maps: dict[str, list[torch.Tensor]]       # method -> one map per step
    correlation: dict[str, list[float]]       # method -> Spearman rank correlation with the original map


def _stages(model: Model) -> list[tuple[str, list[nn.Module]]]:
    """The network's weighted modules grouped by catalogue stage, from the top (classifier) down.

    A module belongs to the first catalogue stage that finishes after it ran; what runs after the
    last stage is the classifier. Found by running the network once, because the catalogue names
    stages (which in VGG are parameter-free ReLUs), not the weights that feed them.
    """
    names = {info.name for info in model.layers()}
    order: list[tuple[str, nn.Module]] = []
    with model.running() as net:
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
                        progress: Progress | None = None, seed: int = 0, **params) -> RandomisationCheck:
    """Maps of `methods` as the top stages of a copy of the network are re-initialised one by one.

    `params` maps a method name to its keyword arguments. Reports after each stage
    (`vislib.runtime.report`); when told to stop, the steps done so far are returned.
    """
    x, target = prepare(model, x, target)
    with model.running() as net:
        twin = dataclasses.replace(model, net=copy.deepcopy(net))  # never the shared network
    stages = _stages(twin)
    result = RandomisationCheck(["original"], {m: [] for m in methods}, {m: [] for m in methods})

    def explain() -> None:
        for m in methods:
            result.maps[m].append(attribute(twin, x, m, target, **params.get(m, {})))
            result.correlation[m].append(_rank_correlation(result.maps[m][0], result.maps[m][-1]))

    explain()
    for step, (name, modules) in enumerate(stages):
        if not report(progress, step, len(stages)):
            break
        # reset_parameters draws from the global RNG: seeded and restored inside the queue
        with twin.running(), seeded(twin.device, seed + step):
            for module in modules:
                module.reset_parameters()
        result.steps.append(name)
        explain()
    else:
        report(progress, len(stages), len(stages))
    return result
