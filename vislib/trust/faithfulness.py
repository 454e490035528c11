"""How faithful is one map to the network: five scores of a map for one picture and one class.

* `deletion`, `insertion`: the areas under Petsiuk et al.'s curves (`curves`; 20 steps);
* `road`: ROAD (Rong et al. 2022) as pytorch-grad-cam computes it (`vislib.trust.road`), at the
  percentiles 20, 40, 60, 80 (the library's tutorial); higher is better;
* `average_drop`, `increase`: Chattopadhay et al. ("Grad-CAM++", 2018): the picture multiplied by
  the map (pytorch-grad-cam's `CamMultImageConfidenceChange`, in the network's normalised input,
  so a pixel the map ignores becomes the training set's mean colour); Average Drop % =
  100 * max(0, Y - O) / Y (lower is better), Increase in Confidence % = 100 if O > Y else 0
  (higher is better; its mean over pictures is the paper's share), Y and O the class's
  probability before and after.

Maps are scaled to [0, 1] (min to max) where the library multiplies or thresholds them; only
the ranking of their pixels matters to the curves. Probabilities (softmax) throughout: the
paper's curves and pytorch-grad-cam's `ClassifierOutputSoftmaxTarget`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

from vislib import render
from vislib.attribution.common import prepare
from vislib.models import Model
from vislib.trust.curves import _curve
from vislib.trust.road import ROAD_PERCENTILES, road


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    higher_is_better: bool
    explanation: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("deletion", "Deletion (area)", False, "Remove the pixels the map ranks highest first: the faster the "
           "class's probability falls, the more the map found what the network used."),
    Metric("insertion", "Insertion (area)", True, "Put the pixels back into a blurred copy, highest first: the "
           "faster the probability rises, the better."),
    Metric("road", "ROAD", True, "Fill the least relevant pixels from their neighbours and, apart, the most "
           "relevant: the larger the difference in probability, the better (fills that leak no shape)."),
    Metric("average_drop", "Average drop %", False, "Keep only what the map shows (the picture times the map): how "
           "much of the probability is lost; lower is better."),
    Metric("increase", "Increase in confidence %", True, "How often the picture times the map is MORE convincing "
                                                         "than the whole picture; higher is better."),
)}


def check_metrics(metrics) -> tuple[str, ...]:
    """`metrics` as a tuple, or ValueError with one sentence naming the unknown one."""
    metrics = tuple(metrics)
    for name in metrics:
        if name not in METRICS:
            raise ValueError(f"Unknown faithfulness metric {name!r}; choose from: {', '.join(METRICS)}.")
    if not metrics:
        raise ValueError(f"Choose at least one faithfulness metric: {', '.join(METRICS)}.")
    return metrics


def confidence_change(model: Model, x: torch.Tensor, target: int, amap) -> tuple[float, float]:
    """(Y, O): the class's probability for the picture and for the picture times the map scaled to [0, 1]."""
    with model.running() as net, torch.no_grad():
        before = float(net(x).float().softmax(1)[0, target])
        change = CamMultImageConfidenceChange()(x, render.normalise(amap)[None], [ClassifierOutputSoftmaxTarget(target)],
                                                net)
    return before, before + float(change[0])


def faithfulness(model: Model, x: torch.Tensor, target: int | None, amap,
                 metrics=("deletion", "insertion", "road", "average_drop", "increase"), steps: int = 20,
                 seed: int = 0) -> dict[str, float]:
    """{metric: score} of a map [H,W] (tensor or array) for x [1,3,H,W] and class `target` (None:
    the top class); METRICS[m].higher_is_better says which way is better. `steps`: of the deletion
    and insertion curves; `seed`: of ROAD's imputation noise."""
    metrics = check_metrics(metrics)
    x, target = prepare(model, x, target)
    amap = torch.as_tensor(np.asarray(amap, dtype=np.float32))
    if tuple(amap.shape) != tuple(x.shape[2:]):
        raise ValueError(f"The map is {tuple(amap.shape)} but the picture is {tuple(x.shape[2:])}.")
    scores: dict[str, float] = {}
    for kind in ("deletion", "insertion"):
        if kind in metrics:
            scores[kind] = _curve(model, x, target, amap, kind, steps, "mean", None, None)[0].auc
    if "road" in metrics:
        scores["road"] = road(model, x, target, amap, seed=seed)
    if "average_drop" in metrics or "increase" in metrics:
        before, after = confidence_change(model, x, target, amap)
        if "average_drop" in metrics:
            scores["average_drop"] = 100.0 * max(0.0, before - after) / before
        if "increase" in metrics:
            scores["increase"] = 100.0 if after > before else 0.0
    return {m: scores[m] for m in metrics}
