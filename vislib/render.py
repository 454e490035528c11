"""Turning maps and tensors into pictures: colour maps, overlays, grids, PNG bytes.

Drawing lives apart from computing (as in Captum): vislib functions return tensors, and
these helpers make the images that pages show and people download.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image


def _array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float32)


def normalise(values, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Scale to [0, 1] between vmin and vmax (the array's own range when not given)."""
    a = _array(values)
    lo = float(a.min()) if vmin is None else vmin
    hi = float(a.max()) if vmax is None else vmax
    return np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)


def colorize(values, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None) -> Image.Image:
    """A 2-D map as an RGB picture through a matplotlib colour map."""
    rgba = colormaps[cmap](normalise(values, vmin, vmax))
    return Image.fromarray((rgba[..., :3] * 255).round().astype(np.uint8))


def overlay(image: Image.Image, values, alpha: float = 0.5, cmap: str = "jet",
            vmin: float | None = None, vmax: float | None = None) -> Image.Image:
    """The map stretched over the picture (smoothly, like the papers' figures) and blended in."""
    heat = colorize(values, cmap, vmin, vmax).resize(image.size, Image.Resampling.BILINEAR)
    return Image.blend(image.convert("RGB"), heat, alpha)


def enlarge(image: Image.Image, size: int) -> Image.Image:
    """Scale a small tile up with visible pixels (nearest neighbour), longer side = size."""
    scale = max(1, size // max(image.size))
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def grid(tiles: list[Image.Image], cols: int, pad: int = 2, background=(255, 255, 255)) -> Image.Image:
    """Tiles of equal size in rows of `cols`, separated by `pad` pixels."""
    if not tiles:
        return Image.new("RGB", (1, 1), background)
    w, h = tiles[0].size
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * (w + pad) - pad, rows * (h + pad) - pad), background)
    for i, tile in enumerate(tiles):
        sheet.paste(tile.convert("RGB"), ((i % cols) * (w + pad), (i // cols) * (h + pad)))
    return sheet


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
