"""Maps and neighbours of a collection's features: PCA, t-SNE, nearest neighbours, grid layout.

Every function takes features as a float array [N, D] (one row per picture) and returns numpy
arrays, so the pages and the command line share them. The t-SNE itself lives in `tsne.py`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness as _sk_trustworthiness

from vislib.data import tsne as _tsne
from vislib.runtime import default_device

METRICS = ("cosine", "euclidean")


def _rows(features) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"Features must be a table of rows [N, D], got an array of shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError("The features contain NaN or infinite values.")
    return x


def tsne(features, seed: int = 0, perplexity: float = 30, *, device=None,
         progress: Callable | None = None) -> np.ndarray:
    """t-SNE map [N, 2] of the rows of `features` (float32; the same seed gives the same map).

    `perplexity` is about how many neighbours each point keeps close (5-50; capped at (N-1)/3).
    `device`: where it runs (default: CUDA when present, else the CPU). `progress(step, total,
    None, kl=..., embedding=[N, 2], phase=0|1)` is called every 10 steps; returning False stops
    early and gives the map so far.
    """
    x = _rows(features)
    if not perplexity > 0:
        raise ValueError(f"The perplexity must be positive, got {perplexity}.")
    if len(x) < 4:
        raise ValueError(f"A t-SNE map needs at least 4 pictures, got {len(x)}.")
    if device is None:  # MPS lacks parts of torch.fft; a Mac runs it on the CPU
        device = "cuda" if default_device().type == "cuda" else "cpu"
    return _tsne.embed(x, seed=seed, perplexity=perplexity, device=device, progress=progress)


def pca(features) -> np.ndarray:
    """The first two principal components [N, 2] (scikit-learn's PCA)."""
    x = _rows(features)
    if len(x) < 2:
        return np.zeros((len(x), 2), np.float32)
    return PCA(2, svd_solver="full").fit_transform(x).astype(np.float32)


def pca_project(features, queries) -> np.ndarray:
    """Where new feature rows land on the `pca(features)` map [M, 2] (the same projection)."""
    x = _rows(features)
    return PCA(2, svd_solver="full").fit(x).transform(_rows(np.atleast_2d(queries))).astype(np.float32)


def distances(features, query, metric: str = "cosine") -> np.ndarray:
    """Distance [N] from `query` (a feature row [D], or an index into `features`) to every row."""
    x = _rows(features)
    q = x[int(query)] if np.isscalar(query) else np.asarray(query, dtype=np.float32).reshape(-1)
    if q.shape[0] != x.shape[1]:
        raise ValueError(f"The query has {q.shape[0]} values but the features have {x.shape[1]}.")
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1) * np.linalg.norm(q)
        return 1 - (x @ q) / np.maximum(norms, 1e-12)
    if metric == "euclidean":
        return np.linalg.norm(x - q, axis=1)
    raise ValueError(f"Unknown metric {metric!r}; choose one of {', '.join(METRICS)}.")


def nearest(features, query, k: int = 8, metric: str = "cosine") -> np.ndarray:
    """Indices [k] of the rows nearest to `query`, nearest first (cosine distance by default).

    `query` is either a feature row [D] (e.g. of a picture outside the collection) or an integer
    index into `features`; an index is left out of its own neighbours. Ties go to the lower index.
    """
    d = distances(features, query, metric)
    if np.isscalar(query):
        d[int(query)] = np.inf
    k = min(k, len(d) - (1 if np.isscalar(query) else 0))
    return np.argsort(d, kind="stable")[:k]


def place(features, points, query, k: int = 8) -> np.ndarray:
    """Where a new feature row lands on any map [2]: the mean position of its k nearest rows.

    t-SNE has no projection for new points, so this is how a picture outside the collection is
    put on a t-SNE map; for PCA, `pca_project` is exact.
    """
    return np.asarray(points, dtype=np.float32)[nearest(features, query, k)].mean(0)


def grid_layout(points, rows: int, cols: int) -> np.ndarray:
    """Snap a 2-D map onto a rows x cols grid: the cell [N] (row * cols + col) of every point.

    Each point gets its own cell and the total squared distance between points and their cells
    is the smallest possible (an optimal assignment, scipy's linear_sum_assignment): the
    "ImageNet on a grid" picture. The map is scaled to the grid first. Fine up to a few
    thousand points (the cost matrix is N x rows*cols).
    """
    p = np.asarray(points, dtype=np.float64)
    if len(p) > rows * cols:
        raise ValueError(f"{len(p)} points do not fit on a {rows} x {cols} grid.")
    span = np.maximum(p.max(0) - p.min(0), 1e-12)
    p = (p - p.min(0)) / span * [cols - 1, rows - 1] if len(p) > 1 else np.zeros_like(p)
    r, c = np.divmod(np.arange(rows * cols), cols)
    cells = np.stack([c, r], 1).astype(np.float64)
    cost = ((p[:, None, :] - cells[None, :, :]) ** 2).sum(-1)
    _, cell = linear_sum_assignment(cost)
    return cell


def trustworthiness(features, points, k: int = 10) -> float:
    """How well a map keeps neighbourhoods: 1 when every map neighbour is also a feature neighbour.

    scikit-learn's `trustworthiness` with k neighbours (at most (N - 1) / 2).
    """
    x = _rows(features)
    return float(_sk_trustworthiness(x, np.asarray(points), n_neighbors=min(k, (len(x) - 1) // 2)))
