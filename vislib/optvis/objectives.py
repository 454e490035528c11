"""Objectives: what an optimisation maximises, composed like numbers (Lucid's `objectives`).

An objective reads a dict of activations: a layer name (a key of `net.named_modules()`) -> that
layer's output [N,C,H,W], plus LOGITS (the network's output [N,K]) and IMAGE (the image being
optimised, [N,3,H,W] in 0-1 RGB, before any transform). It names the layers it needs, so that
only those are hooked, and the (layer, channel) pairs it reads, so that a channel or class the
network does not have is one sentence before any work (`render.check`).

Every objective works on a batch: it averages over the images, or with `batch=i` (where offered)
reads image i only, so that one batch can show several channels, one per image.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

LOGITS = "logits"
IMAGE = "image"
Acts = dict  # name -> tensor, as above


class Objective:
    """A scalar to maximise, computed from activations; adds, scales and negates like a number.

    `fn(acts) -> 0-d tensor`; `layers` are the module names it reads (LOGITS and IMAGE need no
    hook); `reads` the (layer or LOGITS, index) pairs of channels and classes it reads; `name`
    is shown in loss legends.
    """

    def __init__(self, fn: Callable[[Acts], torch.Tensor], name: str = "", layers: Sequence[str] = (),
                 reads: Sequence[tuple[str, int]] = ()):
        self.fn, self.name = fn, name
        self.layers, self.reads = tuple(dict.fromkeys(layers)), tuple(dict.fromkeys(reads))

    def __call__(self, acts: Acts) -> torch.Tensor:
        return self.fn(acts)

    def __add__(self, other):
        if not isinstance(other, Objective):
            return Objective(lambda a: self(a) + other, f"{self.name} + {other}", self.layers, self.reads)
        return Objective(lambda a: self(a) + other(a), f"{self.name} + {other.name}",
                         self.layers + other.layers, self.reads + other.reads)

    __radd__ = __add__

    def __neg__(self):
        return Objective(lambda a: -self(a), f"-({self.name})", self.layers, self.reads)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, k: float):
        if isinstance(k, Objective):
            raise TypeError("objectives multiply by numbers only")
        return Objective(lambda a: k * self(a), f"{k:g} * {self.name}", self.layers, self.reads)

    __rmul__ = __mul__

    def __truediv__(self, k: float):
        return self * (1.0 / k)

    def __repr__(self):
        return f"Objective({self.name})"


def objective(make: Callable) -> Callable[..., Objective]:
    """Decorator: `make(*args)` returns `(fn, layers)` or `(fn, layers, reads)`; the result builds
    a named Objective (tensors and functions among the arguments are left out of the name)."""
    def build(*args, **kwargs) -> Objective:
        fn, layers, *reads = make(*args, **kwargs)
        shown = [*map(repr, filter(_showable, args)),
                 *(f"{k}={v!r}" for k, v in kwargs.items() if _showable(v) and v is not None)]
        return Objective(fn, f"{make.__name__}({', '.join(shown)})", layers, reads[0] if reads else ())
    build.__name__, build.__doc__ = make.__name__, make.__doc__
    return build


def _showable(value) -> bool:
    return not (torch.is_tensor(value) or callable(value))


def _images(t: torch.Tensor, batch: int | None) -> torch.Tensor:
    """All images of a batch, or image `batch` alone (keeping the batch dimension)."""
    return t if batch is None else t[batch:batch + 1]


@objective
def class_logit(target: int, batch: int | None = None):
    """The class's logit (Simonyan et al. 2014 maximise the unnormalised score)."""
    return (lambda a: _images(a[LOGITS], batch)[:, target].mean()), (LOGITS,), ((LOGITS, target),)


@objective
def class_log_softmax(target: int):
    """The class's log-probability: also pushes the other classes down."""
    return (lambda a: a[LOGITS].float().log_softmax(1)[:, target].mean()), (LOGITS,), ((LOGITS, target),)


@objective
def channel(layer: str, index: int, batch: int | None = None):
    """Mean activation of one channel of a layer (a feature visualisation)."""
    return (lambda a: _images(a[layer], batch)[:, index].mean()), (layer,), ((layer, index),)


@objective
def neuron(layer: str, index: int, x: int | None = None, y: int | None = None, batch: int | None = None):
    """One channel's activation at one cell, by default the centre one (Lucid's neuron)."""
    def fn(a):
        t = _images(a[layer], batch)
        row = t.shape[-2] // 2 if y is None else y
        col = t.shape[-1] // 2 if x is None else x
        return t[:, index, row, col].mean()
    return fn, (layer,), ((layer, index),)


@objective
def layer_activation(layer: str):
    """Mean squared activation of a whole layer: DeepDream's objective (amplify whatever is there)."""
    return (lambda a: a[layer].float().pow(2).mean()), (layer,)


def _through(a: Acts, layer: str, through: Callable | None) -> torch.Tensor:
    x = a[layer].float()
    return x if through is None else through(x)


@objective
def feature_match(layer: str, target: torch.Tensor, through: Callable | None = None):
    """Squared distance to target activations over the target's squared norm (Mahendran and Vedaldi
    2015), per image. `through` is applied to the layer's activations first (e.g. the smoothing
    of `synthesis.style`; `target` is then already through it). Maximise its negative."""
    norm = target.float().pow(2).sum().clamp_min(1e-12)

    def fn(a):
        x = _through(a, layer, through)
        return (x - target).pow(2).sum() / (norm * x.shape[0])
    return fn, (layer,)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of [N,C,H,W] features, normalised by the number of positions: [N,C,C]."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


@objective
def gram_match(layer: str, target_gram: torch.Tensor, through: Callable | None = None):
    """Squared distance of the layer's Gram matrix to a target Gram over the target's squared norm,
    per image: Gatys et al.'s style/texture loss. `through` as in `feature_match`. Maximise its
    negative: `-gram_match(layer, gram(target))`."""
    norm = target_gram.float().pow(2).sum().clamp_min(1e-12)

    def fn(a):
        g = gram(_through(a, layer, through))
        return (g - target_gram).pow(2).sum() / (norm * g.shape[0])
    return fn, (layer,)


@objective
def l2():
    """Squared distance of the image from mid-grey, per image (Simonyan's L2 regulariser); subtract it."""
    return (lambda a: (a[IMAGE] - 0.5).pow(2).sum() / a[IMAGE].shape[0]), ()


@objective
def total_variation(beta: float = 2.0):
    """Sum of squared neighbour differences to the power beta/2, per image (Mahendran and Vedaldi
    2015); subtract it."""
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
