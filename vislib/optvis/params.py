"""Parameterisations: what the optimiser changes, and how the image is made from it (Lucid's `param`).

`pixels` is the image itself; `fourier` is Lucid's decorrelated Fourier image. Both make
[N,3,H,W] images in 0-1 RGB, `batch` of them, from a seed (a local generator: the global one is
never touched).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from vislib.runtime import default_device


@dataclass
class Param:
    """What the optimiser changes (`tensors`), and how the image is made from it.

    `pixels` holds the image itself when the parameterisation is plain pixels (the image
    operations of `transforms` need it); `constrain()` is applied after every step (e.g. keep
    pixels in a range).
    """
    tensors: list[torch.Tensor]
    make_image: Callable[[], torch.Tensor]
    constrain: Callable[[], None] = lambda: None
    pixels: torch.Tensor | None = None


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def pixels(size: int | tuple[int, int] | None = None, init: torch.Tensor | None = None,
           seed: int = 0, sd: float = 0.01, device=None, low=0.0, high=1.0,
           quantise: bool = False, batch: int = 1) -> Param:
    """The image's pixels themselves, kept within [low, high] (numbers or tensors like the image).

    Starts at `init` ([N,3,H,W] in 0-1) or at grey plus Gaussian noise of `sd` (`batch` images).
    With `quantise`, the network sees the pixels rounded to 8 bits (straight-through gradient),
    i.e. exactly what a PNG of the image holds.
    """
    if init is None:
        noise = torch.randn(batch, 3, *_hw(size), generator=torch.Generator().manual_seed(seed)) * sd
        init = 0.5 + noise
    x = init.detach().clone().float().to(device or default_device())
    low, high = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (low, high))
    x = torch.maximum(torch.minimum(x, high), low).requires_grad_(True)

    def make():
        return x + ((x * 255).round() / 255 - x).detach() if quantise else x

    def constrain():
        with torch.no_grad():
            x.copy_(torch.maximum(torch.minimum(x, high), low))
    return Param([x], make, constrain, pixels=x)


# Lucid's colour decorrelation: the square root of ImageNet's colour covariance, by SVD; the
# Fourier parameterisation works in these decorrelated colours.
_COLOR_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = _COLOR_SVD_SQRT / _COLOR_SVD_SQRT.norm(dim=0).max()


def fourier(size: int | tuple[int, int], seed: int = 0, sd: float = 0.01, decay_power: float = 1.0,
            device=None, batch: int = 1) -> Param:
    """Lucid's decorrelated Fourier image: a spectrum scaled by 1/frequency, in decorrelated colours.

    Hand-written (as in Lucid's fft_image/to_valid_rgb, a dozen lines) because no maintained
    PyTorch library ships it; Lucent, its port, pins old versions and hooks every module.
    Optimising the spectrum equalises the learning rate over frequencies, so high-frequency
    noise does not win (Olah et al. 2017, "Feature Visualization").
    """
    h, w = _hw(size)
    device = device or default_device()
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freqs = (fx * fx + fy * fy).sqrt()
    scale = (1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power).to(device)  # with "ortho" below, as Lucid
    spectrum = torch.randn(batch, 3, *freqs.shape, 2, generator=torch.Generator().manual_seed(seed)) * sd
    spectrum = spectrum.to(device).requires_grad_(True)
    color = _COLOR.T.to(device)

    def make():
        coefficients = torch.view_as_complex(scale[..., None] * spectrum)
        image = torch.fft.irfftn(coefficients, s=(h, w), norm="ortho") / 4.0  # Lucid's "magic" 4
        image = (image.permute(0, 2, 3, 1) @ color).permute(0, 3, 1, 2)
        return torch.sigmoid(image)
    return Param([spectrum], make)
