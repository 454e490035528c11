"""Grad-CAM's relatives, from pytorch-grad-cam (wrapped, not re-derived): each weighs the channels
of one layer's feature map its own way - Grad-CAM++ (second-order gradient weights), XGrad-CAM
(gradients times activations), LayerCAM (per-cell positive gradients), HiResCAM (gradients times
activations, cell by cell, no averaging), Score-CAM (the score of the picture masked by each
channel), Ablation-CAM (the score lost when each channel is zeroed) and Eigen-CAM (the feature
map's first principal component, class-independent).

Each map is the library's own (`cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0]`):
negatives dropped, stretched to the input's size, scaled to 0..1. The library registers hooks and
runs its passes itself, so it runs inside `explaining(model)` (the device queue, in-place flags
off, a stop point before every pass) and its hooks are released in `finally`.
"""
from __future__ import annotations

import torch
from pytorch_grad_cam import (AblationCAM, EigenCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM)
from pytorch_grad_cam.ablation_layer import AblationLayer
from pytorch_grad_cam.utils.find_layers import replace_layer_recursive
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from vislib.attribution.cams import gradcam_layer
from vislib.attribution.common import explaining, finished, prepare
from vislib.models import LayerError, Model
from vislib.runtime import Progress, batch_size as batch_for, report


class _Stop(Exception):
    """Raised from a pass when `progress` returned False: the library has no way to stop midway."""


class _NeedsCopies(Exception):
    """A batched pass failed with one picture before the layer: a layer after it joins a branch from
    before it (a concatenation wants the batch's size), so the library's own copies are needed."""


def run_cam(model: Model, x: torch.Tensor, target: int | None, layer: str | None, make, label: str,
         progress: Progress | None = None, batched: int = 0, one_picture: bool = False) -> torch.Tensor:
    """The library's map [H,W] for class `target` at `layer` (None: Grad-CAM's layer); `make(net,
    module)` builds the library's object. With `batched` = n, every pass after the first n (of the
    picture itself) is one batch of masked or ablated copies, reported to `progress` as copies
    done of the layer's channels; with `one_picture`, those passes take one copy of the picture
    in (the layer makes the batch: see `ablationcam`)."""
    x, target = prepare(model, x, target)
    name = layer or gradcam_layer(model)
    module = model.module(name)
    with explaining(model) as net:
        cam = make(net, module)
        done, passes = 0, 0

        def count(_module, args):
            nonlocal done, passes
            passes += 1
            if batched and passes > batched:
                channels = cam.activations_and_grads.activations[0].shape[1]
                if not report(progress, done, channels):
                    raise _Stop
                done += args[0].shape[0]
                if one_picture:
                    return (args[0][:1],) + args[1:]
        counter = net.register_forward_pre_hook(count)
        try:
            maps = cam(input_tensor=x.requires_grad_(cam.uses_gradients), targets=[ClassifierOutputTarget(target)])
        except _Stop:
            return torch.zeros(x.shape[2:])  # stopped: the library keeps no partial map
        except Exception:
            if one_picture and passes > batched:
                raise _NeedsCopies from None
            saved = cam.activations_and_grads.activations
            if saved and saved[0].dim() != 4:  # the library fails in a different place for each method
                raise LayerError(f"{label} needs a layer with a spatial map, and {name!r} of {model.name} has "
                                 f"none.") from None
            raise
        finally:
            counter.remove()
            cam.activations_and_grads.release()
            if isinstance(cam, AblationCAM) and cam.ablation_layer is not module:
                # AblationCAM swaps the layer for its ablation layer and swaps it back only when
                # nothing went wrong; a stop midway must not leave the shared network changed.
                replace_layer_recursive(net, cam.ablation_layer, module)
    if batched:
        report(progress, done, done)
    return finished(torch.from_numpy(maps[0]))


def gradcam_plus_plus(model: Model, x: torch.Tensor, target: int | None = None,
                      layer: str | None = None) -> torch.Tensor:
    return run_cam(model, x, target, layer, lambda net, m: GradCAMPlusPlus(net, [m]), "Grad-CAM++")


def xgradcam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> torch.Tensor:
    return run_cam(model, x, target, layer, lambda net, m: XGradCAM(net, [m]), "XGrad-CAM")


def layercam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> torch.Tensor:
    return run_cam(model, x, target, layer, lambda net, m: LayerCAM(net, [m]), "LayerCAM")


def hirescam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> torch.Tensor:
    return run_cam(model, x, target, layer, lambda net, m: HiResCAM(net, [m]), "HiResCAM")


def eigencam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> torch.Tensor:
    """Class-independent: `target` only names the class other methods would explain."""
    return run_cam(model, x, target, layer, lambda net, m: EigenCAM(net, [m]), "Eigen-CAM")


def _batch(model: Model, batch_size: int | None) -> int:
    """Copies per pass: 16 on a CPU (about a second of lite0 at 224 px on 2 cores, so a stop waits
    at most that long), 64 on a GPU."""
    return batch_size or batch_for(model.device, cpu=16, gpu=64)


def scorecam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None,
             batch_size: int | None = None, progress: Progress | None = None) -> torch.Tensor:
    """One pass per channel of the layer (1280 for efficientnet_lite0), in batches of `batch_size`."""
    def make(net, module):
        cam = ScoreCAM(net, [module])
        cam.batch_size = _batch(model, batch_size)  # the library reads it as an attribute
        return cam
    return run_cam(model, x, target, layer, make, "Score-CAM", progress, batched=1)


def ablationcam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None,
                batch_size: int | None = None, progress: Progress | None = None) -> torch.Tensor:
    """One pass per channel of the layer, from the layer on, in batches.

    The library feeds each batch the picture repeated, and its ablation layer throws the layers
    before it away: it returns the cached feature map with channels zeroed, whatever comes in. So
    only one copy goes in; the layers after the ablation layer still see the whole batch (a skip
    connection from before it broadcasts). Same map; at the last layer of efficientnet_lite0 about
    10x faster (bench/cam_family.py). Where a concatenation after the layer needs the batch's size
    all along (an Inception branch), the library's copies are used instead."""
    # A fresh ablation layer each call: the library's default argument is one object shared by
    # every call, and it keeps state (the activations, the channels left to ablate).
    def run(one_picture: bool) -> torch.Tensor:
        return run_cam(model, x, target, layer, lambda net, m: AblationCAM(
            net, [m], ablation_layer=AblationLayer(), batch_size=_batch(model, batch_size)), "Ablation-CAM",
            progress, batched=2, one_picture=one_picture)  # the picture, then again to cache the layer's input
    try:
        return run(True)
    except _NeedsCopies:
        return run(False)


__all__ = ["ablationcam", "eigencam", "gradcam_plus_plus", "hirescam", "layercam", "run_cam", "scorecam",
           "xgradcam"]
