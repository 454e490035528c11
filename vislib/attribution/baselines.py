"""Baselines for judging attribution methods: maps that know nothing of the class. A method is
only worth its passes where it beats them. Both are the ones pytorch-grad-cam's metric tutorial
compares every CAM with: its RandomCAM (Grad-CAM's layer weighed by random numbers instead of the
class's gradients) and a Sobel edge map (many faithfulness scores reward mere edges).

Why a random CAM and not random pixels: a map of independent random pixels deletes scattered
single pixels, and a picture sprinkled with grey dots loses its class whatever the dots cover (on
12 ImageNet pictures its deletion score, 0.168, beat Grad-CAM's 0.194 and occlusion's 0.176 -
the artefact ROAD was made for). A random CAM has a CAM's blobs, so a score compares what the
maps know, not how smooth they are.

Both take `model` and `target` to be called like every method (`attribute(model, x, "edges")`)."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from pytorch_grad_cam import RandomCAM

from vislib.attribution.cam_family import run_cam
from vislib.attribution.common import check_class, check_picture, finished
from vislib.models import Model


def _checked(model: Model, x: torch.Tensor, target: int | None) -> None:
    """The picture and the class checked as every method checks them, without running the network."""
    check_picture(x)
    if target is not None:
        check_class(model, target)


class _SeededRandomCAM(RandomCAM):
    """The library's RandomCAM drawing from a generator of its own: the library draws from numpy's
    global one, which a seed would have to reset for every other user of it. A RandomState seeded
    with `seed` draws the same numbers as the library after `np.random.seed(seed)`."""

    def __init__(self, net, layers, seed: int):
        super().__init__(net, layers)
        self.rng = np.random.RandomState(seed)

    def get_cam_weights(self, input_tensor, target_layer, target_category, activations, grads):
        return self.rng.uniform(-1, 1, size=(grads.shape[0], grads.shape[1]))


def random(model: Model, x: torch.Tensor, target: int | None = None, seed: int = 0,
           layer: str | None = None) -> torch.Tensor:
    """pytorch-grad-cam's RandomCAM: the channels of `layer` (None: Grad-CAM's) weighed by uniform
    random numbers in [-1, 1], negatives dropped, stretched to the picture and scaled to 0..1. The
    same seed gives the same map; numpy's global generator is left alone. `target` is checked but
    changes nothing (the weights ignore the class)."""
    return run_cam(model, x, target, layer, lambda net, m: _SeededRandomCAM(net, [m], int(seed)), "Random CAM")


def edges(model: Model, x: torch.Tensor, target: int | None = None) -> torch.Tensor:
    """The Sobel gradient's magnitude of the grey picture (0-255 grey levels per pixel). The
    tutorial's `sobel_cam` averages |dx| and |dy| and saturates at 255; the true magnitude keeps the
    strongest edges apart."""
    _checked(model, x, target)
    grey = cv2.cvtColor(np.asarray(model.to_image(x[0])), cv2.COLOR_RGB2GRAY).astype(np.float32)
    dx, dy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return finished(torch.from_numpy(cv2.magnitude(dx, dy)))


__all__ = ["edges", "random"]
