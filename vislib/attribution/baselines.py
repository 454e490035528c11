"""Baselines for judging attribution methods: maps that know nothing of the network. A method is
only worth its passes where it beats them (pytorch-grad-cam's metric tutorial compares every CAM
with a random map and a Sobel edge map, because many faithfulness scores reward mere edges).

Both ignore the network and the class; they take `model` and `target` to be called like every
method (`attribute(model, x, "edges")`)."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from vislib.attribution.common import check_class, check_picture, finished
from vislib.models import Model


def _checked(model: Model, x: torch.Tensor, target: int | None) -> None:
    """The picture and the class checked as every method checks them, without running the network."""
    check_picture(x)
    if target is not None:
        check_class(model, target)


def random(model: Model, x: torch.Tensor, target: int | None = None, seed: int = 0) -> torch.Tensor:
    """Uniform noise in [0, 1), one value per pixel, from its own generator (the same seed gives the
    same map; the global random generator is left alone)."""
    _checked(model, x, target)
    return torch.rand(tuple(x.shape[2:]), generator=torch.Generator().manual_seed(int(seed)))


def edges(model: Model, x: torch.Tensor, target: int | None = None) -> torch.Tensor:
    """The Sobel gradient's magnitude of the grey picture (0-255 grey levels per pixel). The
    tutorial's `sobel_cam` averages |dx| and |dy| and saturates at 255; the true magnitude keeps the
    strongest edges apart."""
    _checked(model, x, target)
    grey = cv2.cvtColor(np.asarray(model.to_image(x[0])), cv2.COLOR_RGB2GRAY).astype(np.float32)
    dx, dy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return finished(torch.from_numpy(cv2.magnitude(dx, dy)))


__all__ = ["edges", "random"]
