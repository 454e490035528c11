"""Upsampling, the way back to full resolution in a segmentation network: nearest neighbour, bed of
nails, max unpooling, bilinear, transposed convolution, and resize-then-convolve.

Each takes a map [C, H, W] (a picture or an activation) and gives one `factor` (or `stride`)
times larger. The operations are torch's own (`F.interpolate`, `F.max_unpool2d`,
`F.conv_transpose2d`); what is written here is only the demonstration around them: a transposed
convolution with a uniform kernel, so that its output on a constant picture counts how many
windows overlap each pixel, and a statistic of that unevenness (Odena et al. 2016, "Deconvolution
and Checkerboard Artifacts"): when the kernel size is not divisible by the stride, neighbouring
pixels receive different numbers of contributions and a checkerboard appears.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

METHODS = ["nearest", "bed of nails", "max unpooling", "bilinear", "transposed convolution",
           "resize, then convolve"]


def _tensor(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    if t.dim() != 3:
        raise ValueError(f"Expected a map [C, H, W], got a tensor of shape {tuple(t.shape)}.")
    return t


def _check(factor: int, name: str = "factor") -> int:
    if int(factor) != factor or factor < 1:
        raise ValueError(f"The {name} must be a whole number of at least 1, not {factor}.")
    return int(factor)


def nearest(x, factor: int = 2) -> torch.Tensor:
    """Each value copied into a factor x factor block."""
    return F.interpolate(_tensor(x)[None], scale_factor=_check(factor), mode="nearest")[0]


def bed_of_nails(x, factor: int = 2) -> torch.Tensor:
    """Each value at the top-left corner of its factor x factor block, zeros elsewhere."""
    t, f = _tensor(x), _check(factor)
    out = torch.zeros(t.shape[0], t.shape[1] * f, t.shape[2] * f)
    out[:, ::f, ::f] = t
    return out


def bilinear(x, factor: int = 2) -> torch.Tensor:
    """Values interpolated between the four nearest input cells."""
    return F.interpolate(_tensor(x)[None], scale_factor=_check(factor), mode="bilinear", align_corners=False)[0]


def max_pool_unpool(x, kernel: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A real max pooling of `x` remembers where each maximum was; max unpooling puts every pooled
    value back at that place and zeros elsewhere. Returns (pooled, unpooled, indices)."""
    t, k = _tensor(x), _check(kernel, "kernel size")
    pooled, indices = F.max_pool2d(t[None], k, return_indices=True)
    unpooled = F.max_unpool2d(pooled, indices, k, output_size=t.shape[-2:])
    return pooled[0], unpooled[0], indices[0]


def uniform_kernel(channels: int, kernel: int, stride: int = 1) -> torch.Tensor:
    """One k x k kernel of equal weights per channel (depthwise), scaled so that a pixel covered by
    the average number of windows, (k / stride)^2, keeps the input's value."""
    return torch.full((channels, 1, kernel, kernel), float(stride * stride) / (kernel * kernel))


def transposed(x, kernel: int = 3, stride: int = 2, weight: torch.Tensor | None = None) -> torch.Tensor:
    """A transposed convolution: each input value stamps the kernel, scaled by itself, onto the
    output at stride-spaced places, and overlapping stamps add up. Output side (n - 1) * stride +
    kernel. Without `weight`, the uniform kernel of `uniform_kernel` (one per channel)."""
    t, k, s = _tensor(x), _check(kernel, "kernel size"), _check(stride, "stride")
    w = uniform_kernel(t.shape[0], k, s) if weight is None else torch.as_tensor(weight, dtype=torch.float32)
    return F.conv_transpose2d(t[None], w, stride=s, groups=t.shape[0] if weight is None else 1)[0]


def resize_convolve(x, factor: int = 2, kernel: int = 3) -> torch.Tensor:
    """Nearest-neighbour resizing, then an ordinary convolution (uniform kernel, 'same' padding):
    every output pixel is the sum of exactly k x k windows, so nothing is uneven (Odena et al.)."""
    t, k = _tensor(x), _check(kernel, "kernel size")
    up = nearest(t, factor)
    # Edge values repeated rather than zeros: the border then stays as even as the inside.
    pad = ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2)
    return F.conv2d(F.pad(up[None], pad, mode="replicate"), uniform_kernel(t.shape[0], k, 1),
                    groups=t.shape[0])[0]


def upsample(x, method: str, factor: int = 2, kernel: int = 3, indices: torch.Tensor | None = None) -> torch.Tensor:
    """Any method of METHODS by name ("max unpooling" pools `x` first when no indices are given)."""
    if method == "nearest":
        return nearest(x, factor)
    if method == "bed of nails":
        return bed_of_nails(x, factor)
    if method == "bilinear":
        return bilinear(x, factor)
    if method == "max unpooling":
        t = _tensor(x)
        if indices is None:
            raise ValueError("Max unpooling needs the positions a max pooling remembered (indices=...).")
        return F.max_unpool2d(t[None], indices[None], factor,
                              output_size=(t.shape[1] * factor, t.shape[2] * factor))[0]
    if method == "transposed convolution":
        return transposed(x, kernel, factor)
    if method == "resize, then convolve":
        return resize_convolve(x, factor, kernel)
    raise ValueError(f"Unknown upsampling method {method!r}; choose one of: {', '.join(METHODS)}.")


def unevenness(y, kernel: int) -> float:
    """How uneven an upsampled constant picture is: (max - min) / mean over its inside, the border
    of `kernel` pixels left out (fewer windows reach the border whatever the stride). 0 for an
    even result; for a transposed convolution, above 0 exactly when kernel % stride != 0."""
    t = _tensor(y)
    inside = t[:, kernel:-kernel, kernel:-kernel] if min(t.shape[1:]) > 2 * kernel + 1 else t
    mean = float(inside.mean())
    return float(inside.max() - inside.min()) / mean if mean else 0.0


def overlap_counts(n: int, kernel: int, stride: int) -> np.ndarray:
    """How many input cells' stamps reach each output position along one side of a transposed
    convolution of an n-cell input (the pattern whose unevenness makes the checkerboard)."""
    out = (n - 1) * stride + kernel
    counts = np.zeros(out, dtype=int)
    for i in range(n):
        counts[i * stride: i * stride + kernel] += 1
    return counts
