"""Any network as a Model: `wrap(module, ...)` for notebooks, and the one assembly every family uses.

A wrapped module needs only to map a batch of pictures [N, 3, S, S] to logits [N, classes]; its
layer catalogue, first convolution and classifier are found by `vislib.models.survey`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vislib.models.checkpoints import ModelError, class_names, read_labels
from vislib.models.model import Model, Preprocessing
from vislib.models.survey import Survey, survey
from vislib.runtime import devices, queue

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def prepare(net: nn.Module, device=None) -> tuple[nn.Module, torch.device]:
    """A network ready to be shared: eval mode, on `device`, weights frozen, passes only through a queue."""
    device = devices.resolve(device)
    net = net.eval().to(device)
    if device.type == "cpu":
        # oneDNN's convolutions run faster in channels-last order on the CPU, on every family of
        # the zoo: forward 1.15-2.5x (lite0 2.5x), forward + backward 1.07-1.44x
        # (bench/channels_last.py); the logits agree to float rounding (<= 4e-5). Only the
        # weights change order: each layer's output follows them, the input may stay as it is.
        net = net.to(memory_format=torch.channels_last)
    # Explanations need gradients with respect to the input only; frozen weights keep every
    # backward pass from also computing (and storing) weight gradients.
    net.requires_grad_(False)
    net.register_forward_pre_hook(queue.guard)
    return net, device


def _check_output(found: Survey, name: str) -> None:
    if found.num_classes < 1:
        shape = "not one tensor" if not found.output_shape else f"a tensor of shape {list(found.output_shape)}"
        raise ModelError(f"{name} must map a batch of pictures to class scores [N, classes], but it returned "
                         f"{shape}.")


def wrap(module: nn.Module, labels=None, input_size: int = 224, mean: Sequence[float] = IMAGENET_MEAN,
         std: Sequence[float] = IMAGENET_STD, name: str | None = None, device=None) -> Model:
    """Any module that maps a batch of pictures [N, 3, S, S] to logits [N, classes], as a Model.

    The module itself is used (not copied): it is put in eval mode and its weights are frozen.
    Pictures are resized and centre-cropped to `input_size`, then normalised with `mean` and `std`."""
    if not isinstance(module, nn.Module):
        raise ModelError(f"wrap() takes a torch.nn.Module, not {type(module).__name__}.")
    if not isinstance(input_size, int) or not 8 <= input_size <= 4096:
        raise ModelError(f"The input size must be a whole number of pixels from 8 to 4096, not {input_size!r}.")
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise ModelError("mean and std take three numbers each (red, green, blue), std above zero.")
    name = name or type(module).__name__
    try:
        found = survey(module.eval(), input_size)
    except Exception as err:  # the person's module, at a size it may not take: say what happened
        raise ModelError(f"{name} could not run on a picture of {input_size} x {input_size} pixels ({err}).") \
            from err
    _check_output(found, name)
    preprocessing = Preprocessing(input_size, input_size, "bilinear", tuple(map(float, mean)), tuple(map(float, std)))
    # arch says what built the network: "custom:..." never matches a family's name, so no
    # family-specific rule (LRP's canonizers, style transfer's layer presets) is applied to it.
    names = class_names(read_labels(labels) if labels is not None else None, found.num_classes, "network")
    return assemble(module, names, preprocessing, found, name=name,
                    arch=f"custom:{name}", device=device)


def assemble(net: nn.Module, labels: list[str], preprocessing: Preprocessing, found: Survey, name: str, arch: str,
             device=None) -> Model:
    """A Model around `net` (its weights loaded), ready to be shared."""
    net, device = prepare(net, device)
    return Model(net=net, name=name, labels=list(labels), preprocessing=preprocessing, device=device, arch=arch,
                 first_conv=found.first_conv, classifier=found.classifier, _catalogue=list(found.catalogue))
