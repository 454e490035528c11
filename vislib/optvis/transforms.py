"""Transforms and image operations: what happens to the image around each step.

- **transforms** (`jitter`, `random_affine`, `standard_transforms`): random, differentiable
  image -> image callables applied before each forward pass, so that the image must work under
  small shifts, zooms and turns (Lucid's `transform`; robustness). Randomness comes from the
  run's own generator.
- **image operations** (`decay`, `blur`, `clip_small_norm`, `clip_small_contribution`): change
  the pixels between steps, Yosinski et al. 2015's non-differentiable regularisers.

Images are [N,3,H,W] in 0-1 RGB; every image of a batch gets the same random view.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
ImageOp = Callable[[int, torch.Tensor, torch.Tensor], None]  # (step, pixels, their gradient) -> changes pixels


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _choice(gen: torch.Generator, values: Sequence[float]) -> float:
    return values[int(torch.randint(len(values), (1,), generator=gen))]


def jitter(d: int) -> Transform:
    """Shift by up to `d` pixels each way, wrapping around (as DeepDream's np.roll); size unchanged."""
    def t(x, gen):
        return torch.roll(x, (_randint(gen, -d, d), _randint(gen, -d, d)), dims=(-2, -1))
    return t


def affine(x: torch.Tensor, angle_degrees: float, zoom: float, shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Rotate and zoom about the centre, then shift by (dx, dy) pixels; same size, grey where the
    picture does not reach. Our own grid_sample because torchvision's affine with a fill colour
    writes in place and so breaks the gradient."""
    a = math.radians(angle_degrees)
    cos, sin = math.cos(a) / zoom, math.sin(a) / zoom
    h, w = x.shape[-2:]
    tx, ty = -2.0 * shift[0] / w, -2.0 * shift[1] / h  # the grid says where each output pixel reads from
    theta = torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5


def random_affine(shift: int, factors: Sequence[float], degrees: Sequence[float]) -> Transform:
    """Shift by up to `shift` pixels each way, zoom by a factor from `factors`, rotate by an angle
    from `degrees`: one resampling at the image's own size, grey coming in at the edges."""
    def t(x, gen):
        dx, dy = _randint(gen, -shift, shift), _randint(gen, -shift, shift)
        return affine(x, float(_choice(gen, degrees)), _choice(gen, factors), (dx, dy))
    return t


def standard_transforms() -> list[Transform]:
    """Lucid's standard robustness set - a 12 px grey pad, jitter 8, zoom 0.9-1.1, rotation
    +-10 degrees, jitter 4 - as ONE resampling at the image's own size: the same kind of random
    view (grey at the edges, the image moved by up to 12 px, zoomed and turned) without Lucid's
    five steps and larger padded input, which cost more per step than the network itself."""
    return [random_affine(12, [1 + (i - 5) / 50 for i in range(11)], list(range(-10, 11)) + 5 * [0])]


def decay(rate: float) -> ImageOp:
    """Pull every pixel towards grey by a fraction `rate` (Yosinski's L2 decay)."""
    def op(step, x, grad):
        x.sub_(0.5).mul_(1 - rate).add_(0.5)
    return op


def blur(sigma: float, every: int) -> ImageOp:
    """Gaussian blur of `sigma` pixels every `every` steps (Yosinski's high-frequency penalty)."""
    size = 2 * math.ceil(3 * sigma) + 1

    def op(step, x, grad):
        if sigma > 0 and every > 0 and step % every == 0:
            x.copy_(TF.gaussian_blur(x, [size, size], [sigma, sigma]))
    return op


def _grey_below(x: torch.Tensor, score: torch.Tensor, percentile: float) -> None:
    """Set to grey the pixels whose `score` ([N,H,W]) is below its image's percentile."""
    if percentile <= 0:
        return
    limit = torch.quantile(score.flatten(1).float(), percentile / 100, dim=1).view(-1, 1, 1)
    x[(score < limit).unsqueeze(1).expand_as(x)] = 0.5


def clip_small_norm(percentile: float) -> ImageOp:
    """Grey out the pixels with the smallest colour norm (Yosinski's norm clipping)."""
    return lambda step, x, grad: _grey_below(x, (x - 0.5).norm(dim=1), percentile)


def clip_small_contribution(percentile: float) -> ImageOp:
    """Grey out the pixels that contribute least to the objective, |x * grad| over colours
    (Yosinski's contribution clipping, a linear estimate of what removing the pixel costs)."""
    return lambda step, x, grad: _grey_below(x, ((x - 0.5) * grad).abs().sum(1), percentile)
