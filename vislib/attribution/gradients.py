"""Gradient methods: how the class score changes with each pixel. Captum's, wrapped, not re-derived;
what this module adds is guided backpropagation at every nonlinearity of every network (`Guided`)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from torch.overrides import TorchFunctionMode
from torchvision.transforms.functional import gaussian_blur

from vislib.attribution.common import colour_max, explaining, finished, prepare, seeded
from vislib.models import Model
from vislib.runtime import batch_size as batch_for


def _batch(model: Model, wanted: int) -> int:
    """All at once on a GPU; on a CPU batches of 8 (about 0.7 s at 224 px on 2 cores), each a point
    where a stop can take effect."""
    return min(wanted, batch_for(model.device, cpu=8, gpu=wanted))


def saliency(model: Model, x: torch.Tensor, target: int | None = None) -> torch.Tensor:
    x, target = prepare(model, x, target)
    with explaining(model) as net:
        return colour_max(Saliency(net).attribute(x.requires_grad_(), target=target, abs=True))


def smoothgrad(model: Model, x: torch.Tensor, target: int | None = None, samples: int = 16,
               noise: float = 0.15, seed: int = 0) -> torch.Tensor:
    """`noise` is the noise's standard deviation as a fraction of the input's range (the paper's 15%)."""
    x, target = prepare(model, x, target)
    sd = noise * float(x.max() - x.min())
    with explaining(model) as net, seeded(x.device, seed):  # Captum draws the noise from the global RNG
        grads = NoiseTunnel(Saliency(net)).attribute(x, target=target, abs=True, nt_type="smoothgrad",
                                                     nt_samples=samples, stdevs=sd,
                                                     nt_samples_batch_size=_batch(model, samples))
    return colour_max(grads)


# ---------------------------------------------------------------- guided backpropagation

class _PositiveGradient(torch.autograd.Function):
    """Identity going forward; going backward, only positive gradients pass (Springenberg et al.)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


# Captum's GuidedBackprop hooks nn.ReLU modules only: it misses ReLU6 (EfficientNet-Lite),
# Hardswish (MobileNetV3), SiLU, and GoogLeNet, whose BasicConv2d calls F.relu as a function, so
# no module hook can see it. A TorchFunctionMode sees every call, module or functional.
_NONLINEAR = {F.relu, torch.relu, torch.Tensor.relu, F.relu6, F.hardtanh, F.leaky_relu, F.elu, F.gelu, F.silu,
              F.hardswish, F.mish, F.hardsigmoid, F.sigmoid, torch.sigmoid, torch.Tensor.sigmoid}
_OUT_OF_PLACE = {torch.relu_: torch.relu, torch.Tensor.relu_: torch.Tensor.relu, F.relu_: F.relu}


class Guided(TorchFunctionMode):
    """Guided backprop at every nonlinearity: its input gradient f'(x)*g is clamped at zero,
    which for a ReLU is exactly Captum's GuidedBackprop rule. Function modes are per thread."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        func = _OUT_OF_PLACE.get(func, func)
        if func in _NONLINEAR and isinstance(args[0], torch.Tensor) and args[0].requires_grad:
            kwargs.pop("inplace", None)  # the input is now a view made by an autograd Function
            args = (_PositiveGradient.apply(args[0]), *args[1:])
        return func(*args, **kwargs)


def guided_gradient(model: Model, x: torch.Tensor, target: int) -> torch.Tensor:
    """The guided gradient [1,3,H,W] of class `target` for a prepared x."""
    with explaining(model) as net, Guided():
        return Saliency(net).attribute(x.detach().requires_grad_(), target=target, abs=False)


def guided_backprop(model: Model, x: torch.Tensor, target: int | None = None) -> torch.Tensor:
    x, target = prepare(model, x, target)
    return colour_max(guided_gradient(model, x, target))


# ---------------------------------------------------------------- integrated gradients

BASELINES = ("black", "blurred", "mean")


def baseline_image(model: Model, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The reference picture of integrated gradients, in the network's normalised space."""
    if kind == "black":  # pixel value 0 after normalisation, not a tensor of zeros
        return model.preprocessing.normalise(torch.zeros_like(x))
    if kind == "blurred":
        sigma = max(1.0, x.shape[-1] / 20)
        return gaussian_blur(x, kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)
    if kind == "mean":
        return x.mean((2, 3), keepdim=True).expand_as(x).contiguous()
    raise ValueError(f"Unknown baseline {kind!r}; choose one of: {', '.join(BASELINES)}.")


def integrated_gradients(model: Model, x: torch.Tensor, target: int | None = None, baseline: str = "black",
                         steps: int = 32, batch_size: int | None = None) -> torch.Tensor:
    """Summed over colour, so that the map adds up to the score's change from the baseline."""
    x, target = prepare(model, x, target)
    reference = baseline_image(model, x, baseline)
    with explaining(model) as net:
        attr = IntegratedGradients(net).attribute(x, baselines=reference, target=target, n_steps=steps,
                                                  internal_batch_size=batch_size or _batch(model, steps))
    return finished(attr[0].sum(0))


__all__ = ["BASELINES", "Guided", "baseline_image", "guided_backprop", "guided_gradient", "integrated_gradients",
           "saliency", "smoothgrad"]
