"""Sample textures and style pictures: scikit-image's bundled textures and two patterns drawn here
(no paintings under copyright)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PIL import Image


def _skimage_texture(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from skimage import data
        return Image.fromarray(getattr(data, name)()).convert("RGB")
    return load


def mosaic(size: int = 384, cells: int = 60, seed: int = 0) -> Image.Image:
    """A colourful stained-glass pattern made here (Voronoi cells with dark leads)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, size, (cells, 2))
    colours = (np.stack([np.abs(np.sin(rng.uniform(0, math.pi, cells) + k)) for k in (0, 2.1, 4.2)], 1) * 230 + 20)
    yy, xx = np.mgrid[0:size, 0:size]
    d = np.hypot(xx[..., None] - points[:, 0], yy[..., None] - points[:, 1])
    nearest = np.sort(d, axis=-1)
    picture = colours[d.argmin(-1)]
    picture[(nearest[..., 1] - nearest[..., 0]) < 3] = 25  # the leads between cells
    return Image.fromarray(picture.astype(np.uint8))


def waves(size: int = 384) -> Image.Image:
    """Swirling colour bands made here (hue follows a warped sine field)."""
    yy, xx = np.mgrid[0:size, 0:size] / size * 2 * math.pi
    field = np.sin(3 * xx + 2 * np.sin(2 * yy)) + np.sin(4 * yy + 1.5 * np.cos(3 * xx))
    hue = (field + 2) / 4
    rgb = np.stack([0.5 + 0.5 * np.cos(2 * math.pi * (hue + k)) for k in (0, 1 / 3, 2 / 3)], -1)
    stripes = 0.6 + 0.4 * np.sin(12 * field)[..., None]
    return Image.fromarray((rgb * stripes * 255).clip(0, 255).astype(np.uint8))


def texture_samples() -> dict[str, Callable[[], Image.Image]]:
    """The samples, as name -> loader."""
    return {"brick": _skimage_texture("brick"), "grass": _skimage_texture("grass"),
            "gravel": _skimage_texture("gravel"), "mosaic": mosaic, "waves": waves}
