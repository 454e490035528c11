"""Cut the explained object out of the picture: an attribution map seeds OpenCV's GrabCut.

A map says roughly where the class's evidence is (a CAM at the resolution of a 7 x 7 feature map);
GrabCut (Rother et al. 2004, `cv2.grabCut`) then follows the picture's own colours to the object's
outline. The map is only a seed: its strongest pixels become "probably the object", its weakest
"surely not" and the rest "probably not", and GrabCut's colour models decide the probable ones.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from vislib.attribution.common import check_picture
from vislib.attribution.registry import attribute, get_method
from vislib.models import Model

# Quantiles of the map: above STRONG probably the object, below WEAK surely background. A CAM
# spreads a little past the object (7 x 7 cells upsampled), so only its top third seeds the object,
# and GrabCut grows it along the picture's colours where they agree.
STRONG, WEAK = 2 / 3, 1 / 4
ITERATIONS = 5  # GrabCut's own examples use 5; the labels settle after 3 to 5


def seed_labels(amap: np.ndarray) -> np.ndarray:
    """GrabCut's starting labels from a map [H,W]: GC_PR_FGD where it is strong, GC_BGD where it is
    weak, GC_PR_BGD elsewhere; ValueError when the map is flat and so marks nothing."""
    amap = np.nan_to_num(np.asarray(amap, dtype=np.float64))
    weak, strong = np.quantile(amap, [WEAK, STRONG])
    if amap.max() <= amap.min():
        raise ValueError("The map is the same everywhere, so it marks no object to cut out.")
    # Ties (a CAM is 0 over much of the picture): strictly above the quantile when "at least" would
    # take in most of the picture.
    foreground = amap >= strong if (amap >= strong).mean() <= 0.5 else amap > strong
    labels = np.full(amap.shape, cv2.GC_PR_BGD, np.uint8)
    labels[amap <= weak] = cv2.GC_BGD
    labels[foreground] = cv2.GC_PR_FGD
    return labels


def segment(model: Model, x: torch.Tensor, target: int | None = None, method: str = "gradcam",
            **params) -> np.ndarray:
    """The object of class `target` (None: the top class) in x [1,3,H,W], as a bool mask [H,W]:
    `method`'s map (with its `params`) seeds GrabCut on the un-normalised picture."""
    check_picture(x)
    get_method(method)  # an unknown method is one sentence before any work
    amap = attribute(model, x, method, target, **params).numpy()
    labels = seed_labels(amap)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)  # GrabCut's GMMs
    cv2.grabCut(np.ascontiguousarray(np.asarray(model.to_image(x[0]))[:, :, ::-1]), labels, None, background, foreground,
                ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def cut_out(model: Model, x: torch.Tensor, mask: np.ndarray) -> Image.Image:
    """The picture x [1,3,H,W] as an RGBA image, transparent outside `mask` (segment's [H,W])."""
    check_picture(x)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(x.shape[2:]):
        raise ValueError(f"The mask is {mask.shape[0]} x {mask.shape[1]} pixels but the picture "
                         f"{x.shape[2]} x {x.shape[3]}.")
    alpha = mask.astype(np.uint8)[:, :, None] * 255
    return Image.fromarray(np.concatenate([np.asarray(model.to_image(x[0])), alpha], axis=2), "RGBA")


__all__ = ["cut_out", "seed_labels", "segment"]
