"""Class activation maps: where in a layer's feature map the class's evidence sits (Captum's
LayerGradCam, wrapped), and Guided Grad-CAM, its composition with guided backpropagation."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam

from vislib.attribution.common import colour_max, explaining, finished, prepare
from vislib.attribution.gradients import guided_gradient
from vislib.models import LayerError, Model


def gradcam_layer(model: Model) -> str:
    """The last layer of the catalogue that still has a spatial map (more than 1 x 1 cell)."""
    spatial = [info.name for info in model.layers() if info.size[0] * info.size[1] > 1]
    if not spatial:
        raise LayerError(f"{model.name} has no layer that keeps the picture's layout [channels, height, width], "
                         f"so class activation maps cannot apply to it.")
    return spatial[-1]


def _cam(model: Model, x: torch.Tensor, target: int, layer: str | None) -> torch.Tensor:
    """Grad-CAM upsampled (bilinearly, as in the paper) to the input's size: [1,1,H,W]."""
    layer = layer or gradcam_layer(model)
    module = model.module(layer)
    with explaining(model) as net:
        cam = LayerGradCam(net, module).attribute(x, target=target, relu_attributions=True)
    if cam.dim() != 4:
        raise LayerError(f"Grad-CAM needs a layer with a spatial map, and {layer!r} of {model.name} has none.")
    return F.interpolate(cam.detach(), size=x.shape[2:], mode="bilinear", align_corners=False)


def gradcam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> torch.Tensor:
    x, target = prepare(model, x, target)
    return finished(_cam(model, x, target, layer)[0, 0])


def guided_gradcam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> torch.Tensor:
    """Guided backprop times the upsampled Grad-CAM, as Captum's GuidedGradCam composes them."""
    x, target = prepare(model, x, target)
    return colour_max(guided_gradient(model, x, target) * _cam(model, x, target, layer))


__all__ = ["gradcam", "gradcam_layer", "guided_gradcam"]
