"""The one image-optimisation engine: every synthesis technique is an objective handed to `render`.

In the manner of Lucid/Lucent, an optimisation is three small pieces:

- an **objective**: an `Objective` that adds, scales and negates like a number and is MAXIMISED.
  It reads a dict of activations: a layer name (a key of `net.named_modules()`) -> that layer's
  output, plus `LOGITS` (the network's output) and `IMAGE` (the image being optimised, [1,3,H,W]
  in 0-1 RGB before any transform). It names the layers it needs, so only those are hooked.
  `class_logit(281) - 1e-4 * l2()`, `parse("blocks.3.0:12")`.
- a **parameterisation** (`pixels`, `fourier`): a `Param` holding the tensors the optimiser
  changes and `make_image()` -> [1,3,H,W] in 0-1 RGB.
- **transforms** (`jitter`, `pad`, `scale`, `rotate`): random image -> image callables, applied
  before each forward pass so that the image must work under small shifts (robustness).

`render` runs the loop; `ImageOp`s (`decay`, `blur`, `clip_small_norm`, `clip_small_contribution`)
change the pixels between steps (Yosinski et al. 2015's non-differentiable regularisers);
`render_octaves` runs it on an image pyramid (DeepDream). Images inside the engine are 0-1 RGB;
the network's normalisation is applied just before the forward pass.

The network is shared and frozen: the engine never changes its state; gradients flow to the
image only. Hooks are registered under the device lock for one step and removed in `finally`.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from vislib.runtime import default_device, device_lock
from vislib.models.zoo import Model

LOGITS = "logits"
IMAGE = "image"
Acts = dict  # name -> tensor, see the module docstring


# ---------------------------------------------------------------- objectives

class Objective:
    """A scalar to maximise, computed from activations; composes like a number.

    `fn(acts) -> 0-d tensor`; `layers` are the module names it reads (LOGITS and IMAGE need
    no hook). `name` is shown in loss legends.
    """

    def __init__(self, fn: Callable[[Acts], torch.Tensor], name: str = "", layers: Sequence[str] = ()):
        self.fn, self.name, self.layers = fn, name, tuple(dict.fromkeys(layers))

    def __call__(self, acts: Acts) -> torch.Tensor:
        return self.fn(acts)

    def __add__(self, other):
        if not isinstance(other, Objective):
            return Objective(lambda a: self(a) + other, f"{self.name} + {other}", self.layers)
        return Objective(lambda a: self(a) + other(a), f"{self.name} + {other.name}", self.layers + other.layers)

    __radd__ = __add__

    def __neg__(self):
        return Objective(lambda a: -self(a), f"-({self.name})", self.layers)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, k: float):
        if isinstance(k, Objective):
            raise TypeError("objectives multiply by numbers only")
        return Objective(lambda a: k * self(a), f"{k:g} * {self.name}", self.layers)

    __rmul__ = __mul__

    def __truediv__(self, k: float):
        return self * (1.0 / k)

    def __repr__(self):
        return f"Objective({self.name})"


def objective(make: Callable) -> Callable[..., Objective]:
    """Decorator: `make(*args)` returns `(fn, layers)`; the result builds a named Objective."""
    def build(*args, **kwargs) -> Objective:
        fn, layers = make(*args, **kwargs)
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items() if not torch.is_tensor(v))])
        return Objective(fn, f"{make.__name__}({shown})", layers)
    build.__name__, build.__doc__ = make.__name__, make.__doc__
    return build


@objective
def class_logit(target: int):
    """The class's logit (Simonyan et al. 2014 maximise the unnormalised score)."""
    return (lambda a: a[LOGITS][:, target].mean()), (LOGITS,)


@objective
def class_log_softmax(target: int):
    """The class's log-probability: also pushes the other classes down."""
    return (lambda a: a[LOGITS].float().log_softmax(1)[:, target].mean()), (LOGITS,)


@objective
def channel(layer: str, index: int):
    """Mean activation of one channel of a layer (a feature visualisation)."""
    return (lambda a: a[layer][:, index].mean()), (layer,)


@objective
def layer_activation(layer: str):
    """Mean squared activation of a whole layer: DeepDream's objective (amplify whatever is there)."""
    return (lambda a: a[layer].float().pow(2).mean()), (layer,)


@objective
def feature_match(layer: str, target: torch.Tensor):
    """Squared distance to target activations over the target's squared norm (Mahendran and Vedaldi 2015).

    Maximise its negative: `-feature_match(layer, target)`.
    """
    norm = target.float().pow(2).sum().clamp_min(1e-12)
    return (lambda a: (a[layer].float() - target).pow(2).sum() / norm), (layer,)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of [N,C,H,W] features, normalised by the number of positions: [N,C,C]."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


@objective
def gram_match(layer: str, target_gram: torch.Tensor):
    """Squared distance of the layer's Gram matrix to a target Gram over the target's squared norm.

    Gatys et al.'s style/texture loss; maximise its negative: `-gram_match(layer, gram(target))`.
    """
    norm = target_gram.float().pow(2).sum().clamp_min(1e-12)
    return (lambda a: (gram(a[layer]) - target_gram).pow(2).sum() / norm), (layer,)


@objective
def l2():
    """Mean squared distance of the image from mid-grey (Simonyan's L2 regulariser); subtract it."""
    return (lambda a: (a[IMAGE] - 0.5).pow(2).sum() / a[IMAGE].shape[0]), ()


@objective
def total_variation(beta: float = 2.0):
    """Sum of squared neighbour differences to the power beta/2 (Mahendran and Vedaldi 2015); subtract it."""
    def fn(a):
        x = a[IMAGE]
        dx = x[..., :-1, 1:] - x[..., :-1, :-1]
        dy = x[..., 1:, :-1] - x[..., :-1, :-1]
        return (dx.pow(2) + dy.pow(2) + 1e-8).pow(beta / 2).sum() / x.shape[0]
    return fn, ()


def parse(text: str) -> Objective:
    """An objective from a text box: "layer:channel" (a channel), "layer" (DeepDream on the layer),
    "class:281" or "logit:281" (a class); several joined by "+"."""
    parts = [p.strip() for p in text.split("+") if p.strip()]
    if not parts:
        raise ValueError("Type a layer name, layer:channel or class:index.")
    total = None
    for part in parts:
        name, _, index = part.rpartition(":") if ":" in part else (part, "", "")
        if index and not index.strip().isdigit():
            raise ValueError(f"{part!r}: after the colon comes a channel or class number.")
        if name in ("class", "logit"):
            term = class_logit(int(index))
        elif index:
            term = channel(name.strip(), int(index))
        else:
            term = layer_activation(part)
        total = term if total is None else total + term
    return total


# ---------------------------------------------------------------- parameterisations

@dataclass
class Param:
    """What the optimiser changes (`tensors`), and how the image is made from it.

    `pixels` holds the image itself when the parameterisation is plain pixels (ImageOps need it);
    `constrain()` is applied after every step (e.g. keep pixels in a range).
    """
    tensors: list[torch.Tensor]
    make_image: Callable[[], torch.Tensor]
    constrain: Callable[[], None] = lambda: None
    pixels: torch.Tensor | None = None


def pixels(size: int | tuple[int, int] | None = None, init: torch.Tensor | None = None,
           seed: int = 0, sd: float = 0.01, device=None, low=0.0, high=1.0,
           quantise: bool = False) -> Param:
    """The image's pixels themselves, kept within [low, high] (numbers or tensors like the image).

    Starts at `init` ([1,3,H,W] in 0-1) or at grey plus Gaussian noise of `sd`. With `quantise`,
    the network sees the pixels rounded to 8 bits (straight-through gradient), i.e. exactly what
    a PNG of the image holds.
    """
    if init is None:
        h, w = (size, size) if isinstance(size, int) else size
        noise = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed)) * sd
        init = 0.5 + noise
    x = init.detach().clone().float().to(device or default_device())
    low, high = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (low, high))
    x = torch.maximum(torch.minimum(x, high), low).requires_grad_(True)

    def make():
        return x + ((x * 255).round() / 255 - x).detach() if quantise else x

    def constrain():
        with torch.no_grad():
            x.copy_(torch.maximum(torch.minimum(x, high), low))
    return Param([x], make, constrain, pixels=x)


# Lucid's colour decorrelation: the square root of ImageNet's colour covariance, by SVD; the
# Fourier parameterisation works in these decorrelated colours.
_COLOR_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = _COLOR_SVD_SQRT / _COLOR_SVD_SQRT.norm(dim=0).max()


def fourier(size: int | tuple[int, int], seed: int = 0, sd: float = 0.01, decay_power: float = 1.0,
            device=None) -> Param:
    """Lucid's decorrelated Fourier image: a spectrum scaled by 1/frequency, in decorrelated colours.

    Hand-written (as in Lucid's fft_image/to_valid_rgb, a dozen lines) because no maintained
    PyTorch library ships it; Lucent, its port, pins old versions and hooks every module.
    Optimising the spectrum equalises the learning rate over frequencies, so high-frequency
    noise does not win (Olah et al. 2017, "Feature Visualization").
    """
    h, w = (size, size) if isinstance(size, int) else size
    device = device or default_device()
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freqs = (fx * fx + fy * fy).sqrt()
    scale = (1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power).to(device)  # with "ortho" below, as Lucid
    spectrum = torch.randn(1, 3, *freqs.shape, 2, generator=torch.Generator().manual_seed(seed)) * sd
    spectrum = spectrum.to(device).requires_grad_(True)
    color = _COLOR.T.to(device)

    def make():
        coefficients = torch.view_as_complex(scale[..., None] * spectrum)
        image = torch.fft.irfftn(coefficients, s=(h, w), norm="ortho") / 4.0  # Lucid's "magic" 4
        image = (image.permute(0, 2, 3, 1) @ color).permute(0, 3, 1, 2)
        return torch.sigmoid(image)
    return Param([spectrum], make)


# ---------------------------------------------------------------- transforms

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _choice(gen: torch.Generator, values: Sequence[float]) -> float:
    return values[int(torch.randint(len(values), (1,), generator=gen))]


def jitter(d: int) -> Transform:
    """Shift by up to `d` pixels each way, wrapping around (as DeepDream's np.roll); size unchanged."""
    def t(x, gen):
        return torch.roll(x, (_randint(gen, -d, d), _randint(gen, -d, d)), dims=(-2, -1))
    return t


def _affine(x: torch.Tensor, angle_degrees: float, zoom: float, shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Rotate and zoom about the centre, then shift by (dx, dy) pixels; same size, grey where the
    picture does not reach. Our own grid_sample because torchvision's affine with a fill colour
    writes in place and so breaks the gradient."""
    a = math.radians(angle_degrees)
    cos, sin = math.cos(a) / zoom, math.sin(a) / zoom
    h, w = x.shape[-2:]
    tx, ty = -2.0 * shift[0] / w, -2.0 * shift[1] / h  # the grid says where each output pixel reads from
    theta = torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5


def random_affine(shift: int, factors: Sequence[float], degrees: Sequence[float]) -> Transform:
    """Shift by up to `shift` pixels each way, zoom by a factor from `factors`, rotate by an angle
    from `degrees`: one resampling at the image's own size, grey coming in at the edges."""
    def t(x, gen):
        dx, dy = _randint(gen, -shift, shift), _randint(gen, -shift, shift)
        return _affine(x, float(_choice(gen, degrees)), _choice(gen, factors), (dx, dy))
    return t


def standard_transforms() -> list[Transform]:
    """Lucid's standard robustness set - a 12 px grey pad, jitter 8, zoom 0.9-1.1, rotation
    +-10 degrees, jitter 4 - as ONE resampling at the image's own size. Lucid chains five steps
    and feeds the network the padded image (248 px for 224): 45% more per step than the network
    itself costs, for the same kind of random view (grey at the edges, the image moved by up
    to 12 px, zoomed and turned)."""
    return [random_affine(12, [1 + (i - 5) / 50 for i in range(11)], list(range(-10, 11)) + 5 * [0])]


# ---------------------------------------------------------------- image operations (between steps)

ImageOp = Callable[[int, torch.Tensor, torch.Tensor], None]  # (step, pixels, their gradient) -> changes pixels


def decay(rate: float) -> ImageOp:
    """Pull every pixel towards grey by a fraction `rate` (Yosinski's L2 decay)."""
    def op(step, x, grad):
        x.sub_(0.5).mul_(1 - rate).add_(0.5)
    return op


def blur(sigma: float, every: int) -> ImageOp:
    """Gaussian blur of `sigma` pixels every `every` steps (Yosinski's high-frequency penalty)."""
    size = 2 * math.ceil(3 * sigma) + 1

    def op(step, x, grad):
        if sigma > 0 and every > 0 and step % every == 0:
            x.copy_(TF.gaussian_blur(x, [size, size], [sigma, sigma]))
    return op


def _zero_below(x: torch.Tensor, score: torch.Tensor, percentile: float) -> None:
    """Set to grey the pixels whose `score` ([1,H,W]) is below the percentile."""
    if percentile <= 0:
        return
    limit = torch.quantile(score.flatten().float(), percentile / 100)
    mask = (score < limit).unsqueeze(1).expand_as(x)
    x[mask] = 0.5


def clip_small_norm(percentile: float) -> ImageOp:
    """Grey out the pixels with the smallest colour norm (Yosinski's norm clipping)."""
    return lambda step, x, grad: _zero_below(x, (x - 0.5).norm(dim=1), percentile)


def clip_small_contribution(percentile: float) -> ImageOp:
    """Grey out the pixels that contribute least to the objective, |x * grad| over colours
    (Yosinski's contribution clipping, a linear estimate of what removing the pixel costs)."""
    return lambda step, x, grad: _zero_below(x, ((x - 0.5) * grad).abs().sum(1), percentile)


# ---------------------------------------------------------------- optimisers

class NormalizedAscent(torch.optim.Optimizer):
    """DeepDream's step: the gradient divided by its mean absolute value, times `lr`.

    Hand-written (a few lines) because torch.optim has no such rule; it makes the step size
    independent of the layer's gradient scale. Steps along -grad (the engine minimises the loss).
    """

    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["lr"] / p.grad.abs().mean().clamp_min(1e-12) * p.grad)
        return loss


class LBFGS(torch.optim.Optimizer):
    """torch.optim.LBFGS(max_iter=1) without a line search, step for step, without waiting on a GPU.

    torch's version reads numbers back to Python on every step (the loss, the curvature test, each
    history weight for `add_(alpha=...)`); each read waits for the GPU to finish, so a GPU step
    costs the CPU's time plus the GPU's (512 px VGG19 style transfer on an H100: 13 ms a step with
    the GPU busy for about 4; 500 steps took 6.85 s, and 5.83 s with this one). Here those numbers
    stay tensors and the tests become masks: a rejected curvature pair enters the history with
    weight 0 (torch leaves it out), a non-descent direction gets step 0 (torch breaks off).
    """

    def __init__(self, params, lr: float = 1.0, history_size: int = 20):
        super().__init__(params, {"lr": lr})
        self.history_size = history_size

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"]]
        lr = self.param_groups[0]["lr"]
        g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        state = self.state["lbfgs"]
        if "d" not in state:  # the first step: steepest descent, scaled as torch does
            state.update(dirs=[], steps=[], ro=[], h=torch.ones((), dtype=g.dtype, device=g.device))
            d, t = -g, (1.0 / g.abs().sum()).clamp(max=1.0) * lr
        else:
            y, s = g - state["g"], state["d"] * state["t"]
            ys = y.dot(s)
            accepted = ys > 1e-10
            if len(state["dirs"]) == self.history_size:
                for key in ("dirs", "steps", "ro"):
                    state[key].pop(0)
            state["dirs"].append(y)
            state["steps"].append(s)
            state["ro"].append(torch.where(accepted, 1.0 / ys, torch.zeros_like(ys)))
            state["h"] = torch.where(accepted, ys / y.dot(y), state["h"])
            q, alphas = -g, []
            for y_i, s_i, ro_i in zip(reversed(state["dirs"]), reversed(state["steps"]), reversed(state["ro"])):
                alphas.append(s_i.dot(q) * ro_i)
                q = q - alphas[-1] * y_i
            d = q * state["h"]
            for y_i, s_i, ro_i, a_i in zip(state["dirs"], state["steps"], state["ro"], reversed(alphas)):
                d = d + s_i * (a_i - y_i.dot(d) * ro_i)
            t = torch.full((), lr, dtype=g.dtype, device=g.device)
        t = torch.where(g.dot(d) > -1e-9, torch.zeros_like(t), t)  # not downhill: stay
        state.update(g=g, d=d, t=t)
        offset = 0
        for p in params:
            p.add_(d[offset:offset + p.numel()].view_as(p) * t)
            offset += p.numel()
        return loss


OPTIMIZERS = {
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "lbfgs": lambda params, lr: LBFGS(params, lr=lr, history_size=20),
    "normalized": lambda params, lr: NormalizedAscent(params, lr=lr),
}


# ---------------------------------------------------------------- the loop

class _Enough(Exception):
    """Raised by the last needed hook: the rest of the network is not needed for this objective."""


def _hooks(model: Model, layers: Sequence[str], acts: Acts, stop_early: bool):
    modules = dict(model.net.named_modules())
    unknown = [n for n in layers if n not in modules]
    if unknown:
        raise KeyError(f"{model.name} has no layer named {unknown[0]!r}")
    me = threading.get_ident()
    wanted = set(layers)

    def keep(name):
        def hook(_m, _i, out):
            # The network is shared between sessions: only this thread's forward pass is ours.
            if threading.get_ident() != me:
                return
            acts[name] = out
            if stop_early and wanted <= acts.keys():
                raise _Enough
        return hook
    return [modules[n].register_forward_hook(keep(n)) for n in layers]


def to_pil(image: torch.Tensor) -> Image.Image:
    """A [1,3,H,W] or [3,H,W] 0-1 tensor as a PIL picture (8-bit, as a PNG would hold it)."""
    x = image.detach()[0] if image.dim() == 4 else image.detach()
    return TF.to_pil_image(x.clamp(0, 1).mul(255).round().byte().cpu())


def normalise(model: Model, image: torch.Tensor) -> torch.Tensor:
    """0-1 RGB -> the network's input scale."""
    mean = torch.tensor(model.mean, device=image.device).view(1, -1, 1, 1)
    std = torch.tensor(model.std, device=image.device).view(1, -1, 1, 1)
    return (image - mean) / std


def sub_progress(progress, offset: int, total: int):
    """A progress callback for one stage of a longer run: steps shifted by `offset` out of `total`."""
    if progress is None:
        return None
    return lambda step, _total, preview=None, **info: progress(offset + step, total, preview, **info)


def render(model: Model, objective: Objective, param: Param, transforms: Sequence[Transform] = (),
           optimizer: str = "adam", steps: int = 200, lr: float = 0.05, seed: int = 0,
           image_ops: Sequence[ImageOp] = (), progress=None, preview_every: int = 10,
           until: Callable[[Acts], bool] | None = None) -> torch.Tensor:
    """Maximise `objective` over `param`; returns the image [1,3,H,W] (0-1, detached).

    Each step: make the image, apply the transforms, normalise, run the network (only as far
    as the objective needs), step the optimiser on -objective, then `param.constrain()` and the
    `image_ops`. `progress(step, total, preview, loss=...)` is called after every step with a
    PIL preview every `preview_every` steps and at the end; when it returns False the run stops
    and the image so far is returned. `until(acts)` is checked on each step's activations; when
    it holds, the image that made them is returned (e.g. a fooling image that already fools).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimiser {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}.")
    if image_ops and param.pixels is None:
        raise ValueError("Image operations (decay, blur, clipping) need the plain pixel parameterisation.")
    if any(t.device != model.device for t in param.tensors):
        raise ValueError(f"The image is on {param.tensors[0].device} but the network on {model.device}: "
                         "make it with device=model.device.")
    gen = torch.Generator().manual_seed(seed)
    opt = OPTIMIZERS[optimizer](param.tensors, lr)
    layers = [n for n in objective.layers if n not in (LOGITS, IMAGE)]
    needs_logits = LOGITS in objective.layers or not layers or until is not None
    acts: Acts = {}
    state = {"loss": None, "done": None}

    def closure():
        opt.zero_grad(set_to_none=True)
        acts.clear()
        image = param.make_image()
        x = image
        for t in transforms:
            x = t(x, gen)
        try:
            acts[LOGITS] = model.net(normalise(model, x))
        except _Enough:
            pass
        acts[IMAGE] = image
        if until is not None and until(acts):
            state["done"] = image.detach().clone()
            return torch.zeros(())
        loss = -objective(acts)
        loss.backward()
        state["loss"] = loss.detach()
        return loss

    for step in range(1, steps + 1):
        with device_lock(model.device):
            handles = _hooks(model, layers, acts, stop_early=not needs_logits)
            try:
                opt.step(closure)
            finally:
                for h in handles:
                    h.remove()
        if state["done"] is not None:
            if progress is not None:
                progress(step, steps, to_pil(state["done"]))
            return state["done"]
        with torch.no_grad():
            param.constrain()
            for op in image_ops:
                op(step, param.pixels, param.pixels.grad)
        acts.clear()  # free the graph's activations between steps
        if progress is None:
            continue
        show = step == steps or step % preview_every == 0
        image = param.make_image().detach() if show else None
        info = {"loss": float(state["loss"])} if state["loss"] is not None else {}
        if progress(step, steps, to_pil(image) if show else None, **info) is False:
            return image if image is not None else param.make_image().detach()
    return param.make_image().detach()


# ---------------------------------------------------------------- octaves

def render_octaves(model: Model, objective: Objective, image: torch.Tensor, octaves: int = 4,
                   octave_scale: float = 1.4, steps_per_octave: int = 10, progress=None, **render_args) -> torch.Tensor:
    """Optimise on an image pyramid, smallest first, carrying the added detail up (DeepDream).

    `image` [1,3,H,W] 0-1. At each octave the picture at that size plus the detail found so far
    (upscaled) is optimised; the detail is what the optimisation added. Returns [1,3,H,W].
    """
    h, w = image.shape[-2:]
    sizes = [(max(1, round(h / octave_scale ** i)), max(1, round(w / octave_scale ** i))) for i in range(octaves)][::-1]
    detail = None
    total = octaves * steps_per_octave
    stopped = []

    def stage(offset):
        inner = sub_progress(progress, offset, total)
        if inner is None:
            return None

        def watch(*args, **kwargs):
            answer = inner(*args, **kwargs)
            if answer is False:
                stopped.append(True)
            return answer
        return watch

    for i, size in enumerate(sizes):
        base = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
        detail = torch.zeros_like(base) if detail is None else \
            F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        param = pixels(init=base + detail, device=image.device)
        result = render(model, objective, param, steps=steps_per_octave, progress=stage(i * steps_per_octave),
                        **render_args)
        detail = result - base
        if stopped:
            break
    if result.shape[-2:] != (h, w):  # stopped before the last octave
        result = F.interpolate(result, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
    return result
