"""ROAD (Rong et al., "A Consistent and Efficient Evaluation Strategy for Attribution Methods", 2022),
as pytorch-grad-cam implements it (`ROADCombined`): the mean over percentiles of (probability with
the LEAST relevant pixels imputed - with the MOST relevant imputed) / 2, the pixels filled by noisy
linear imputation from their neighbours so that the removal itself leaks no shape.

The library's parts are used as they are - its thresholds, its averaging, its solve and its noise -
except the one step it does slowly: `NoisyLinearImputer.setup_sparse_system` fills a scipy
`lil_matrix` entry by entry through fancy indexing, 0.8 s of the 2 s a map's ROAD took at 224 px on
this project's CPU. `_Imputer` builds the same matrix from arrays in one go (tests: the same
matrix, the same picture for the same seed).
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam.metrics.perturbation_confidence import (AveragerAcrossThresholds, PerturbationConfidenceMetric,
                                                               RemoveLeastRelevantFirst, RemoveMostRelevantFirst)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer, neighbors_weights
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import spsolve

from vislib import render
from vislib.attribution.common import seeded
from vislib.models import Model

ROAD_PERCENTILES = (20, 40, 60, 80)  # pytorch-grad-cam's tutorial's


def linear_system(mask: np.ndarray, img: np.ndarray, weighting=neighbors_weights) -> tuple[csc_matrix, np.ndarray]:
    """The library's equation system of the missing pixels (mask [H,W] == 0) of img [C,H,W]: each
    missing pixel is the weighted mean of its 8 neighbours, the known ones moved to the right-hand
    side. (A [N,N] in CSC with sorted indices, b [N,C]), equal to `setup_sparse_system`'s."""
    flat_mask, flat_img = mask.flatten(), img.reshape(img.shape[0], -1)
    missing = np.argwhere(flat_mask == 0).flatten()
    unknown_index = np.zeros(len(flat_mask), dtype=int)
    unknown_index[missing] = np.arange(len(missing))
    n = len(missing)
    b = np.zeros((n, img.shape[0]))
    diagonal = np.ones(n)  # the weight of the neighbours inside the picture (negated below)
    rows, cols, values = [], [], []
    for offset, weight in weighting:
        valid, moved = NoisyLinearImputer.add_offset_to_indices(missing, offset, mask.shape)
        neighbour, equation = moved[valid], np.argwhere(valid == 1).flatten()
        known = flat_mask[neighbour] > 0.5
        b[equation[known], :] -= weight * flat_img[:, neighbour[known]].T
        free = flat_mask[neighbour] < 0.5
        rows.append(equation[free])
        cols.append(unknown_index[neighbour[free]])
        values.append(np.full(int(free.sum()), weight))
        diagonal[~valid] -= weight
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    values.append(-diagonal)
    matrix = csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    matrix.sum_duplicates()  # canonical: sorted indices, as the library's lil -> csc conversion gives
    return matrix, b


class _Imputer(NoisyLinearImputer):
    """The library's noisy linear imputation with `linear_system` in place of its slow set-up."""

    def __call__(self, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        flat = img.reshape(img.shape[0], -1)
        missing = np.argwhere(mask.reshape(-1) == 0).flatten()
        matrix, b = linear_system(mask.numpy(), img.numpy(), self.weighting)
        solved = torch.tensor(spsolve(matrix, b), dtype=torch.float)
        filled = flat.clone()
        filled[:, missing] = solved.t() + self.noise * torch.randn_like(solved.t())
        return filled.reshape_as(img)


class _MostRelevantFirst(PerturbationConfidenceMetric):
    def __init__(self, percentile):
        super().__init__(RemoveMostRelevantFirst(percentile, _Imputer()))


class _LeastRelevantFirst(PerturbationConfidenceMetric):
    def __init__(self, percentile):
        super().__init__(RemoveLeastRelevantFirst(percentile, _Imputer()))


def road(model: Model, x: torch.Tensor, target: int, amap, percentiles=ROAD_PERCENTILES, seed: int = 0) -> float:
    """`ROADCombined` of the map scaled to [0, 1], step for step as the library (least relevant
    first, then most; so the same noise). The imputation adds noise from the global generator:
    seeded with `seed` and restored, inside the queue (so it is repeatable and leaves other work's
    random numbers alone)."""
    cam = render.normalise(amap)[None]  # min to max; a constant map: all zeros
    targets = [ClassifierOutputSoftmaxTarget(target)]
    with model.running() as net, seeded(model.device, seed):
        least = AveragerAcrossThresholds(_LeastRelevantFirst, list(percentiles))(x, cam, targets, net)
        most = AveragerAcrossThresholds(_MostRelevantFirst, list(percentiles))(x, cam, targets, net)
    return float(((least - most) / 2)[0])
