"""A fast t-SNE in torch: exact neighbours, FFT-interpolated repulsion, stopping by convergence.

Why our own optimiser instead of scikit-learn or openTSNE: both run a fixed number of iterations
(250 exaggerated + 500 or more) whatever the data, spend most of it on an embedding that has long
stopped changing, and run only on a CPU. Here every step is a handful of torch operations, so the
same code runs on a GPU, and each phase stops as soon as the KL divergence barely moves
(Belkina et al. 2019 stop the exaggeration phase the same way).

The pieces (each follows a paper, so the names are theirs):
- affinities: the exact k = 3 * perplexity nearest neighbours (one matrix product per block),
  Gaussian bandwidths found by bisection on all rows at once, symmetrised P (van der Maaten 2014);
- initialisation: PCA scaled to a standard deviation of 1e-4 (Kobak & Linderman 2021);
- learning rate N / exaggeration (Belkina et al. 2019), momentum and gains as in bhtsne;
- repulsion: FIt-SNE's interpolation (Linderman et al. 2019): charges are spread onto an
  equispaced grid with Lagrange weights (3 nodes per box), the grid potentials are one FFT
  convolution per charge, and each point reads its potential back with the same weights. The grid
  is kept coarse (at most `max_boxes` boxes per side): t-SNE tolerates a small error in the
  repulsion, and the cost of a step then no longer grows as the map spreads out. Below
  EXACT_BELOW points the exact all-pairs sum is cheaper and is used instead.
On a GPU the same steps run as they are (70,000 points is 6M edges and a few 300 x 300 FFTs per
step), with the sums by index in fixed point (`RowSums`), so a seed gives the same map on every
run there too.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from vislib.runtime import one_thread, report

NODES = 3  # interpolation nodes per box and axis (FIt-SNE's default)
EXACT_BELOW = 1000  # fewer points: the exact N x N repulsion is cheaper than the grid and its FFTs


def affinities(x: torch.Tensor, perplexity: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The symmetric t-SNE affinities P as edges (i, j, p_ij) with i < j; the p_ij sum to 1/2."""
    n = x.shape[0]
    k = min(n - 1, int(3 * perplexity))
    dist, nbr = _knn(x, k)
    cond = _bandwidths(dist, min(perplexity, k / 3))
    rows = torch.arange(n, device=x.device).repeat_interleave(k)
    i, j = torch.minimum(rows, nbr.reshape(-1)), torch.maximum(rows, nbr.reshape(-1))
    # p_ij = (p_j|i + p_i|j) / 2N: an edge found from both ends gets both conditional terms.
    key, inverse = torch.unique(i * n + j, return_inverse=True)
    p = RowSums(inverse, len(key))(cond.reshape(-1))
    return key // n, key % n, (p / (2 * n)).float()


class RowSums:
    """Sums of rows of values by a destination index: out[index[k]] += values[k], the same bits on every run.

    On a GPU `index_add_` adds floats with atomics in no fixed order, and t-SNE grows the last bit
    into a different map: one seed gave another picture on every run. There (or with
    `fixed_point`) the values are added as 64-bit integers, 2^-36 of the largest value apart,
    which add exactly in any order, about as fast as the floats' atomics (bench/RESULTS.md,
    t-SNE). A CPU's `index_add_` already adds in order.
    """

    def __init__(self, index: torch.Tensor, size: int, fixed_point: bool | None = None):
        self.index, self.size = index, size
        self.fixed_point = index.device.type != "cpu" if fixed_point is None else fixed_point

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        shape = (self.size, *values.shape[1:])
        if not self.fixed_point:
            return torch.zeros(shape, dtype=values.dtype, device=values.device).index_add_(0, self.index, values)
        # 36 bits for the largest value leave 27 for carries: no sum of up to 2^27 rows overflows
        scale = torch.exp2(36 - torch.ceil(torch.log2(values.abs().amax().double().clamp_min(1e-300))))
        ints = torch.round(values.double() * scale).long()
        sums = torch.zeros(shape, dtype=torch.long, device=values.device).index_add_(0, self.index, ints)
        return (sums.double() / scale).to(values.dtype)


def _knn(x: torch.Tensor, k: int, block: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours (squared Euclidean), the point itself left out."""
    sq = (x * x).sum(1)
    dists, idx = [], []
    for start in range(0, len(x), block):
        d = sq[start:start + block, None] - 2 * x[start:start + block] @ x.T + sq[None]
        rows = torch.arange(d.shape[0], device=x.device)
        d[rows, rows + start] = math.inf
        v, i = torch.topk(d, k, dim=1, largest=False)
        dists.append(v.clamp_min(0)), idx.append(i)
    return torch.cat(dists), torch.cat(idx)


def _bandwidths(dist: torch.Tensor, perplexity: float, steps: int = 40) -> torch.Tensor:
    """Conditional probabilities p_j|i whose entropy is log(perplexity), by bisection on every row at once."""
    d = (dist - dist[:, :1]).double()  # shifting each row leaves p_j|i unchanged and avoids underflow
    target = math.log(perplexity)
    lo = torch.zeros(len(d), 1, dtype=d.dtype, device=d.device)
    hi = torch.full_like(lo, math.inf)
    beta = torch.ones_like(lo) / d.mean(1, keepdim=True).clamp_min(1e-12)
    for _ in range(steps):
        p = torch.exp(-d * beta)
        s = p.sum(1, keepdim=True)
        entropy = torch.log(s) + beta * (d * p).sum(1, keepdim=True) / s
        too_flat = entropy > target  # too many neighbours share the mass: narrow the Gaussian
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(torch.isinf(hi), beta * 2, (lo + hi) / 2)
    p = torch.exp(-d * beta)
    return p / p.sum(1, keepdim=True)


def _kernel_fft(grid: int, spacing: torch.Tensor, power: int, dtype) -> torch.Tensor:
    """The FFT of the kernel 1 / (1 + r^2)^power between grid nodes, embedded in a 2G-periodic grid."""
    offsets = torch.arange(2 * grid, device=spacing.device, dtype=dtype)
    offsets = torch.where(offsets <= grid, offsets, offsets - 2 * grid) * spacing
    r2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return torch.fft.rfft2((1 + r2) ** -power)


def repulsion(y: torch.Tensor, max_boxes: int = 100, box_width: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """FIt-SNE's interpolated repulsion: (sum_j q_ij^2 (y_i - y_j) for every i, Z = sum_{i != j} q_ij).

    q_ij = 1 / (1 + |y_i - y_j|^2) unnormalised; the force on i is the first result divided by Z.
    """
    n = y.shape[0]
    lo, hi = y.min(0).values, y.max(0).values
    span = (hi - lo).max().clamp_min(1e-3) * (1 + 1e-5)
    boxes = int(min(max_boxes, max(10, math.ceil(float(span) / box_width))))
    width = span / boxes
    grid = boxes * NODES
    t = (y - lo) / width
    box = t.floor().clamp(0, boxes - 1)
    u = t - box  # position inside its box, in [0, 1]
    nodes = (torch.arange(NODES, device=y.device, dtype=y.dtype) + 0.5) / NODES
    # Lagrange basis polynomial of every node at u, for both axes: [n, 2, NODES]
    weights = torch.ones(n, 2, NODES, device=y.device, dtype=y.dtype)
    for a in range(NODES):
        for b in range(NODES):
            if a != b:
                weights[:, :, a] *= (u - nodes[b]) / (nodes[a] - nodes[b])
    index = box.long()[:, :, None] * NODES + torch.arange(NODES, device=y.device)
    cell = (index[:, 0, :, None] * grid + index[:, 1, None, :]).reshape(n, -1)  # [n, NODES^2]
    w = (weights[:, 0, :, None] * weights[:, 1, None, :]).reshape(n, -1)
    centre = (lo + hi) / 2  # charges relative to the centre keep float32 cancellation small
    yc = y - centre
    charges = torch.cat([torch.ones(n, 1, device=y.device, dtype=y.dtype), yc], 1)  # [n, 3]
    spread = RowSums(cell.reshape(-1), grid * grid)((w[:, :, None] * charges[:, None, :]).reshape(-1, 3))
    spread_fft = torch.fft.rfft2(spread.T.reshape(3, grid, grid), s=(2 * grid, 2 * grid))
    spacing = width / NODES
    k2 = _kernel_fft(grid, spacing, 2, y.dtype)
    k1 = _kernel_fft(grid, spacing, 1, y.dtype)
    potentials = torch.fft.irfft2(torch.cat([spread_fft * k2, spread_fft[:1] * k1]), s=(2 * grid, 2 * grid))
    potentials = potentials[:, :grid, :grid].reshape(4, -1).T  # [G*G, 4]: sum K2, sum K2 y, sum K1
    at_points = (potentials[cell] * w[:, :, None]).sum(1)  # [n, 4]
    force = yc * at_points[:, :1] - at_points[:, 1:3]
    z = at_points[:, 3].sum() - n  # the interpolated sum includes each point's own q_ii = 1
    return force, z.clamp_min(1e-12)


def exact_repulsion(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same two results as `repulsion`, summed over all pairs."""
    diff = y[:, None] - y[None]
    q = 1 / (1 + (diff * diff).sum(-1))
    q.fill_diagonal_(0)
    return ((q * q)[..., None] * diff).sum(1), q.sum()


class _Optimiser:
    """Gradient descent with momentum and per-coordinate gains (delta-bar-delta), as in bhtsne."""

    def __init__(self, y: torch.Tensor, lr: float):
        self.y, self.lr = y, lr
        self.update = torch.zeros_like(y)
        self.gains = torch.ones_like(y)

    def step(self, grad: torch.Tensor, momentum: float) -> None:
        same = torch.sign(grad) == torch.sign(self.update)
        self.gains = torch.where(same, self.gains * 0.8, self.gains + 0.2).clamp_min(0.01)
        self.update = momentum * self.update - self.lr * self.gains * grad
        self.y += self.update


def embed(x, seed: int = 0, perplexity: float = 30.0, *, exaggeration: float = 12.0,
          max_iter: tuple[int, int] = (250, 750), min_iter: tuple[int, int] = (50, 100), tol: float = 1e-2,
          max_boxes: int = 100, device=None, progress: Callable | None = None) -> np.ndarray:
    """t-SNE of the rows of `x` (see `vislib.embedding.tsne`); returns float32 [N, 2] on the CPU.

    Two phases, as in every t-SNE: `exaggeration` x the attraction with momentum 0.5, then plain
    t-SNE with momentum 0.8; each ends after `max_iter` steps or, after `min_iter`, once the KL
    divergence falls by less than `tol` (relative) in 10 steps.
    """
    device = torch.device(device or "cpu")
    x = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
    n = len(x)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}.")
    x = x - x.mean(0)
    if x.shape[1] > 50:  # the usual PCA-50 first: neighbours barely change, the distances get 10x cheaper
        x = x @ torch.linalg.svd(x, full_matrices=False)[2][:50].T
    i, j, p = affinities(x, perplexity)
    entropy = float((p * torch.log(p)).sum() * 2)

    generator = torch.Generator(device="cpu").manual_seed(seed)
    y = _pca_init(x) + 1e-6 * torch.randn(n, 2, generator=generator).to(device)  # the seed breaks ties
    opt = _Optimiser(y, max(n / exaggeration, 50.0))
    edge_sums = RowSums(torch.cat([i, j]), n)  # the attraction's: +pull at i, -pull at j
    total = sum(max_iter)
    step, kl = 0, math.nan
    for phase, (alpha, momentum, limit) in enumerate([(exaggeration, 0.5, max_iter[0]), (1.0, 0.8, max_iter[1])]):
        last = math.inf
        for it in range(1, limit + 1):
            with one_thread(device):  # bench/tsne.py --threads: one is faster
                diff = y[i] - y[j]
                q = 1 / (1 + (diff * diff).sum(1))
                pull = (p * q)[:, None] * diff
                attract = edge_sums(torch.cat([pull, -pull]))
                push, z = exact_repulsion(y) if n < EXACT_BELOW else repulsion(y, max_boxes)
                opt.step(alpha * attract - push / z, momentum)
            step += 1
            if it % 10:
                continue
            # KL(P || Q) = sum p log p - sum p log q_unnormalised + log Z (the p_ij sum to 1).
            kl = entropy - 2 * float((p * torch.log(q)).sum()) + math.log(float(z))
            if not report(progress, step, total, kl=kl, embedding=y.cpu().numpy().copy(), phase=phase):
                return y.cpu().numpy()
            # Converged: the KL divergence fell by less than `tol` (relative) over the last 10 steps.
            if it > min_iter[phase] and last - kl < tol * abs(kl):
                break
            last = kl
        total = step + max_iter[1] if phase == 0 else step
        if phase == 0:
            opt.update.zero_()  # bhtsne and openTSNE start the second phase without momentum carry-over
    report(progress, step, step, kl=kl, embedding=y.cpu().numpy().copy(), phase=1)
    return y.cpu().numpy()


def _pca_init(x: torch.Tensor) -> torch.Tensor:
    """The first two principal components, scaled to a standard deviation of 1e-4, signs fixed."""
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    y = u[:, :2] * s[:2]
    y = y * torch.sign(y[y.abs().argmax(0), torch.arange(2)])  # largest entry positive: no sign flips
    return y / y[:, 0].std() * 1e-4
