"""Which pixels made the network decide: one map [H,W] per method, for one picture and one class.

Every method is Captum's where Captum has it (wrapped, not re-derived); what this module adds is
what makes them work on every network of the zoo without per-model cases:

* `_explaining(model)` holds the device lock, switches every `inplace` flag off for the call
  (Captum's hooks break on in-place modules) and restores them in `finally`;
* guided backpropagation intercepts every nonlinearity, functional or module (see `_Guided`).

The shared network is left exactly as found: no hooks, same flags, same weights.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerGradCam, NoiseTunnel, Saliency
from torch.overrides import TorchFunctionMode
from torchvision.transforms.functional import gaussian_blur

from vislib.attribution import perturbation as _occlusion
from vislib.runtime import checkpoint, device_lock, falls_back
from vislib.models.zoo import Model


# ---------------------------------------------------------------- making any network explainable

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


class _Guided(TorchFunctionMode):
    """Guided backprop at every nonlinearity: its input gradient f'(x)*g is clamped at zero,
    which for a ReLU is exactly Captum's GuidedBackprop rule."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        func = _OUT_OF_PLACE.get(func, func)
        if func in _NONLINEAR and isinstance(args[0], torch.Tensor) and args[0].requires_grad:
            kwargs.pop("inplace", None)  # the input is now a view made by an autograd Function
            args = (_PositiveGradient.apply(args[0]), *args[1:])
        return func(*args, **kwargs)


@contextlib.contextmanager
def _explaining(model: Model, guided: bool = False):
    """Hooks-safe for one call: in-place flags off (and guided rules on), all restored in finally."""
    with device_lock(model.device):
        flipped = [m for m in model.net.modules() if getattr(m, "inplace", None) is True]
        for m in flipped:
            m.inplace = False
        # Captum's methods run many batches in one call: each may be where a stop takes effect.
        stop_point = model.net.register_forward_pre_hook(lambda _module, _args: checkpoint())
        try:
            with _Guided() if guided else contextlib.nullcontext():
                yield
        finally:
            stop_point.remove()
            for m in flipped:
                m.inplace = True


def _prepare(model: Model, x: torch.Tensor, target: int | None) -> tuple[torch.Tensor, int]:
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"Attribution explains one colour picture: expected a batch [1,3,H,W], got {tuple(x.shape)}.")
    x = x.detach().to(model.device, torch.float32)
    n = len(model.labels)
    if target is None:
        with device_lock(model.device), torch.inference_mode():
            target = int(model.net(x)[0].argmax())
    elif not 0 <= int(target) < n:
        raise ValueError(f"The class {target} does not exist: {model.name} has classes 0 to {n - 1}.")
    return x, int(target)


def _done(values: torch.Tensor) -> torch.Tensor:
    return values.detach().float().cpu()


def _batch(model: Model, wanted: int) -> int:
    """All at once on a GPU; on a CPU batches of 8 (about 0.7 s at 224 px on 2 cores), each a point
    where a stop can take effect."""
    return wanted if model.device.type != "cpu" else min(wanted, 8)


def _colour_max(grad: torch.Tensor) -> torch.Tensor:
    """Max over colour of |gradient|, Simonyan et al.'s reduction of a [1,3,H,W] gradient."""
    return _done(grad[0].abs().amax(0))


# ---------------------------------------------------------------- the methods

def saliency(model: Model, x: torch.Tensor, target: int | None = None) -> torch.Tensor:
    x, target = _prepare(model, x, target)
    with _explaining(model):
        return _colour_max(Saliency(model.net).attribute(x.requires_grad_(), target=target, abs=True))


def smoothgrad(model: Model, x: torch.Tensor, target: int | None = None, samples: int = 16,
               noise: float = 0.15, seed: int = 0) -> torch.Tensor:
    """`noise` is the noise's standard deviation as a fraction of the input's range (the paper's 15%)."""
    x, target = _prepare(model, x, target)
    sd = noise * float(x.max() - x.min())
    with _explaining(model), torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        grads = NoiseTunnel(Saliency(model.net)).attribute(x, target=target, abs=True, nt_type="smoothgrad",
                                                           nt_samples=samples, stdevs=sd,
                                                           nt_samples_batch_size=_batch(model, samples))
    return _colour_max(grads)


def _guided_gradient(model: Model, x: torch.Tensor, target: int) -> torch.Tensor:
    with _explaining(model, guided=True):
        return Saliency(model.net).attribute(x.detach().requires_grad_(), target=target, abs=False)


def guided_backprop(model: Model, x: torch.Tensor, target: int | None = None) -> torch.Tensor:
    x, target = _prepare(model, x, target)
    return _colour_max(_guided_gradient(model, x, target))


def gradcam_layer(model: Model) -> str:
    """The last layer of the catalogue that still has a spatial map (more than 1 x 1 cell)."""
    spatial = [info.name for info in model.layers() if info.size[0] * info.size[1] > 1]
    return spatial[-1]


def _layer_module(model: Model, layer: str | None):
    layer = layer or gradcam_layer(model)
    if layer not in {info.name for info in model.layers()}:
        raise ValueError(f"{model.name} has no layer named {layer!r} in its catalogue.")
    return dict(model.net.named_modules())[layer]


def _cam(model: Model, x: torch.Tensor, target: int, layer: str | None) -> torch.Tensor:
    """Grad-CAM upsampled (bilinearly, as in the paper) to the input's size: [1,1,H,W]."""
    module = _layer_module(model, layer)
    with _explaining(model):
        cam = LayerGradCam(model.net, module).attribute(x, target=target, relu_attributions=True)
    return F.interpolate(cam.detach(), size=x.shape[2:], mode="bilinear", align_corners=False)


def gradcam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> torch.Tensor:
    x, target = _prepare(model, x, target)
    return _done(_cam(model, x, target, layer)[0, 0])


def guided_gradcam(model: Model, x: torch.Tensor, target: int | None = None, layer: str | None = None) -> torch.Tensor:
    """Guided backprop times the upsampled Grad-CAM, as Captum's GuidedGradCam composes them."""
    x, target = _prepare(model, x, target)
    return _colour_max(_guided_gradient(model, x, target) * _cam(model, x, target, layer))


BASELINES = ("black", "blurred", "mean")


def baseline_image(model: Model, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The reference picture of integrated gradients, in the network's normalised space."""
    if kind == "black":  # pixel value 0 after normalisation, not a tensor of zeros
        mean = torch.tensor(model.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(model.std, device=x.device).view(1, -1, 1, 1)
        return (-mean / std).expand_as(x).contiguous()
    if kind == "blurred":
        sigma = max(1.0, x.shape[-1] / 20)
        return gaussian_blur(x, kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)
    if kind == "mean":
        return x.mean((2, 3), keepdim=True).expand_as(x).contiguous()
    raise ValueError(f"Unknown baseline {kind!r}; choose one of: {', '.join(BASELINES)}.")


def integrated_gradients(model: Model, x: torch.Tensor, target: int | None = None, baseline: str = "black",
                         steps: int = 32, batch_size: int | None = None) -> torch.Tensor:
    """Summed over colour, so that the map adds up to the score's change from the baseline."""
    x, target = _prepare(model, x, target)
    reference = baseline_image(model, x, baseline)
    with _explaining(model):
        attr = IntegratedGradients(model.net).attribute(x, baselines=reference, target=target, n_steps=steps,
                                                        internal_batch_size=batch_size or _batch(model, steps))
    return _done(attr[0].sum(0))


def occlusion_fill(x: torch.Tensor, baseline=0.0) -> torch.Tensor | float:
    """The occluder's colour in the network's normalised input: a value (0.0, the default as in
    the API, is the training set's mean colour, the lecture's grey, for networks normalised by it),
    one per channel, or "mean" for this picture's own mean colour."""
    return x.detach().mean((0, 2, 3)) if isinstance(baseline, str) and baseline == "mean" else baseline


def occlusion(model: Model, x: torch.Tensor, target: int | None = None, window: int = 16, stride: int = 8,
              baseline=0.0, progress=None) -> torch.Tensor:
    x, target = _prepare(model, x, target)
    return _occlusion.occlusion(model, x, target, window, stride, occlusion_fill(x, baseline), progress=progress)


def occlusion_preview(model: Model, x: torch.Tensor, target: int | None = None, window: int = 16, stride: int = 8,
                      baseline=0.0) -> torch.Tensor:
    """A quick approximation of `occlusion`'s map, to show while the exact one is computed."""
    x, target = _prepare(model, x, target)
    return _occlusion.occlusion_preview(model, x, target, window, stride, occlusion_fill(x, baseline))[0]


def occlusion_curve(model: Model, x: torch.Tensor, target: int, row: int, window: int = 16, step: int = 4,
                    baseline=0.0) -> tuple[list[int], list[float]]:
    """The target's probability as the window slides horizontally along `row` (its centre there).

    Returns the window centres' x coordinates and the probabilities.
    """
    x, target = _prepare(model, x, target)
    _, _, height, width = x.shape
    top = min(max(0, row - window // 2), height - window)
    lefts = list(range(0, width - window + 1, step))
    batch = x.repeat(len(lefts), 1, 1, 1)
    fill = torch.as_tensor(occlusion_fill(x, baseline), dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    for i, left in enumerate(lefts):
        batch[i, :, top:top + window, left:left + window] = fill
    probs = torch.cat([model.probabilities(chunk)[:, target] for chunk in batch.split(32)])
    return [left + window // 2 for left in lefts], probs.tolist()


def colour_scale(maps) -> tuple[float, float, str, str]:
    """(vmin, vmax, overlay colour map, raw colour map) for drawing maps on one scale: signed maps
    (integrated gradients, occlusion) get a diverging scale centred on 0, the others start at 0."""
    lo, hi = min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)
    if lo < 0:
        top = max(-lo, hi)
        return -top, top, "RdBu_r", "RdBu_r"
    return 0.0, hi, "jet", "viridis"


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class Method:
    label: str
    function: Callable[..., torch.Tensor]
    explanation: str
    fast: bool  # one forward and backward pass: on screen at once


METHODS: dict[str, Method] = {
    "saliency": Method("Saliency", saliency, "How much the class score changes when one pixel changes a little: "
                       "the gradient of the score, largest over the three colours.", True),
    "guided_backprop": Method("Guided backprop", guided_backprop, "The gradient again, but every nonlinearity lets "
                              "only positive signals flow back: sharp edges of what excites the class.", True),
    "gradcam": Method("Grad-CAM", gradcam, "Where in the last feature map the class's evidence sits: each channel "
                      "weighted by its average gradient, negatives dropped, stretched to the picture.", True),
    "guided_gradcam": Method("Guided Grad-CAM", guided_gradcam, "Guided backprop's fine detail kept only where "
                             "Grad-CAM says the class is.", True),
    "smoothgrad": Method("SmoothGrad", smoothgrad, "Saliency averaged over noisy copies of the picture (16 in the "
                         "paper): the noise in a single gradient averages out.", False),
    "integrated_gradients": Method("Integrated gradients", integrated_gradients, "Gradients summed along a path "
                                   "from a starting picture (black, blurred or grey) to yours; the map adds up to the "
                                   "score's change.",
                                   False),
    "occlusion": Method("Occlusion", occlusion, "Cover a square of the picture with grey (the training set's mean "
                        "colour) and watch the score drop; slide the square everywhere.", False),
}


@falls_back
def attribute(model: Model, x: torch.Tensor, method: str, target: int | None = None, **params) -> torch.Tensor:
    """The `method`'s map [H,W] (CPU, float32) of class `target` (None: the top class) for x [1,3,H,W]."""
    if method not in METHODS:
        raise ValueError(f"Unknown attribution method {method!r}; choose one of: {', '.join(METHODS)}.")
    return METHODS[method].function(model, x, target, **params)
