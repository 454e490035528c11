"""The registry of attribution methods: one `Method` entry per method says what the app, the command
line and the docs need to know of it - its function, its label, its group, a classroom-length
explanation, and its parameters with their types, defaults (the function's own) and help.

A new method is one function (in the module of its group: `gradients`, `cams` and `cam_family`,
`perturbation` and `rise`, `relevance`, `baselines`) and one entry in METHODS; the page, `attribute` and
`vislib explain --param NAME=VALUE` pick it up from here.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Callable

import torch

from vislib.attribution import baselines
from vislib.attribution.cam_family import (ablationcam, eigencam, gradcam_plus_plus, hirescam, layercam, scorecam,
                                           xgradcam)
from vislib.attribution.cams import gradcam, guided_gradcam
from vislib.attribution.gradients import BASELINES, guided_backprop, integrated_gradients, saliency, smoothgrad
from vislib.attribution.perturbation import occlusion
from vislib.attribution.relevance import lrp
from vislib.attribution.rise import rise
from vislib.models import Model
from vislib.runtime import falls_back

GROUPS = {  # group -> (heading, what its methods ask)
    "gradients": ("Gradients", "what would change the score if a pixel changed a little"),
    "cams": ("Class activation maps", "where in a layer's feature map the class's evidence sits"),
    "perturbation": ("Perturbation", "what the score misses when a part of the picture is hidden"),
    "relevance": ("Relevance", "how the score is shared out, layer by layer, down to the pixels"),
    "baselines": ("Baselines", "what a map that knows nothing of the network looks like, for comparison"),
}


def fill(text: str) -> float | str:
    """a number or "mean\""""
    return text if text == "mean" else float(text)


_KINDS = {int: "a whole number", float: "a number", str: "a name"}


@dataclass(frozen=True)
class Param:
    """One keyword parameter of a method's function: how text becomes its value (`type`: int,
    float, str or a parser whose docstring says what it takes), what it means, its limits."""
    name: str
    type: Callable[[str], object]
    help: str
    choices: tuple = ()
    least: float | None = None
    default: object = None  # the function's own default, filled in by Method

    @property
    def kind(self) -> str:
        return _KINDS.get(self.type) or (self.type.__doc__ or "a value").strip()

    def parse(self, text: str):
        """The value of `text`, or ValueError with one sentence."""
        try:
            value = self.type(text.strip())
        except (TypeError, ValueError):
            raise ValueError(f"The parameter {self.name} takes {self.kind}, not {text!r}.") from None
        return self.check(value)

    def check(self, value):
        if self.choices and value not in self.choices:
            raise ValueError(f"The parameter {self.name} is one of {', '.join(map(str, self.choices))}, not {value!r}.")
        if self.least is not None and isinstance(value, (int, float)) and value < self.least:
            raise ValueError(f"The parameter {self.name} must be at least {self.least}, not {value}.")
        return value


@dataclass(frozen=True)
class Method:
    function: Callable[..., torch.Tensor]
    label: str
    group: str
    explanation: str
    params: tuple[Param, ...] = ()
    fast: bool = False  # one forward and backward pass: on screen at once

    def __post_init__(self):
        signature = inspect.signature(self.function).parameters
        object.__setattr__(self, "params", tuple(
            dataclasses.replace(p, default=signature[p.name].default if p.name in signature else None)
            for p in self.params))

    @property
    def name(self) -> str:
        """The method string is the function's name (`gradcam`), as in the docs and the CLI."""
        return self.function.__name__

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params) or "none"
        raise ValueError(f"{self.label} has no parameter {name!r}; its parameters are: {known}.")

    def check(self, params: dict) -> dict:
        """`params` if they are the method's and their values allowed (None: the default); else
        ValueError. Keywords of the function that are no parameter of the method (`progress`) pass."""
        passing = set(inspect.signature(self.function).parameters) - {"model", "x", "target"} - {
            p.name for p in self.params}
        for name, value in params.items():
            if name not in passing:
                spec = self.param(name)
                if value is not None:
                    spec.check(value)
        return params

    def parse(self, pairs: list[str]) -> dict:
        """Typed keyword arguments from "NAME=VALUE" texts (the command line's --param)."""
        params = {}
        for pair in pairs:
            name, equals, text = pair.partition("=")
            if not equals:
                raise ValueError(f"A parameter is given as NAME=VALUE, e.g. window=32, not {pair!r}.")
            params[name.strip()] = self.param(name.strip()).parse(text)
        return params


def _share(text: str) -> float:
    """a number above 0 and at most 1"""
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(text)
    return value


_BATCH = Param("batch_size", int, "copies per pass; unless given, 16 on a CPU, 64 on a GPU", least=1)
_LAYER = Param("layer", str, "the layer whose feature map is weighted; unless given, the last one with a spatial map")

METHODS: dict[str, Method] = {m.name: m for m in (
    Method(saliency, "Saliency", "gradients", "How much the class score changes when one pixel changes a little: "
           "the gradient of the score, largest over the three colours.", fast=True),
    Method(guided_backprop, "Guided backprop", "gradients", "The gradient again, but every nonlinearity lets only "
           "positive signals flow back: sharp edges of what excites the class.", fast=True),
    Method(smoothgrad, "SmoothGrad", "gradients", "Saliency averaged over noisy copies of the picture (16 in the "
           "paper): the noise in a single gradient averages out.", (
               Param("samples", int, "how many noisy copies are averaged", least=1),
               Param("noise", float, "the noise's standard deviation, as a share of the picture's range", least=0),
               Param("seed", int, "the seed of the noise, so that a map can be made again"))),
    Method(integrated_gradients, "Integrated gradients", "gradients", "Gradients summed along a path from a "
           "starting picture (black, blurred or grey) to yours; the map adds up to the score's change.", (
               Param("baseline", str, "the starting picture", choices=BASELINES),
               Param("steps", int, "how many points along the path", least=1),
               Param("batch_size", int, "points per pass; unless given, all on a GPU, 8 on a CPU", least=1))),
    Method(gradcam, "Grad-CAM", "cams", "Where in the last feature map the class's evidence sits: each channel "
           "weighted by its average gradient, negatives dropped, stretched to the picture.", (_LAYER,), fast=True),
    Method(guided_gradcam, "Guided Grad-CAM", "cams", "Guided backprop's fine detail kept only where Grad-CAM says "
           "the class is.", (_LAYER,), fast=True),
    Method(occlusion, "Occlusion", "perturbation", "Cover a square of the picture with grey (the training set's "
           "mean colour) and watch the score drop; slide the square everywhere.", (
               Param("window", int, "the side of the square, in pixels", least=1),
               Param("stride", int, "pixels between two places of the square", least=1),
               Param("baseline", fill, "the square's colour: 0 is the training set's mean colour, mean the "
                     "picture's own"),
               Param("batch_size", int, "occluded copies per pass; unless given, 8 on a CPU, what fits on a GPU",
                     least=1))),
    Method(gradcam_plus_plus, "Grad-CAM++", "cams", "Grad-CAM with each channel weighted by where its gradients "
           "are positive (second-order terms): several objects of one class all show.", (_LAYER,), fast=True),
    Method(xgradcam, "XGrad-CAM", "cams", "Grad-CAM whose channel weights are the gradients times the "
           "activations, normalised: an axiom-derived variant.", (_LAYER,), fast=True),
    Method(layercam, "LayerCAM", "cams", "Each cell of the feature map weighted by its own positive gradient, not "
           "a channel average: finer maps, even from early layers.", (_LAYER,), fast=True),
    Method(hirescam, "HiResCAM", "cams", "The gradient times the activation, cell by cell, summed over channels: "
           "exactly the locations that raised the score.", (_LAYER,), fast=True),
    Method(scorecam, "Score-CAM", "cams", "Each channel of the feature map used as a mask on the picture; the "
           "channel weighs what the class's probability then is. No gradients, one pass per channel.", (
               _LAYER, _BATCH)),
    Method(ablationcam, "Ablation-CAM", "cams", "Each channel of the feature map switched off in turn; the channel "
           "weighs how much the score drops. No gradients, one pass per channel.", (_LAYER, _BATCH)),
    Method(eigencam, "Eigen-CAM", "cams", "The feature map's first principal component: where the layer responds "
           "most, whatever the class (the same map for every class).", (_LAYER,), fast=True),
    Method(rise, "RISE", "perturbation", "Thousands of random masks, each hiding about half of the picture in soft "
           "blobs; a pixel's value is the class's average probability when it could be seen.", (
               Param("masks", int, "how many random masks (the paper's 4000)", least=1),
               Param("cells", int, "the masks' grid, cells per side (the paper's 7)", least=1),
               Param("keep", _share, "the chance that a cell is visible (the paper's 0.5)"),
               Param("seed", int, "the seed of the masks, so that a map can be made again"),
               Param("batch_size", int, "masked copies per pass; unless given, 32 on a CPU, 256 on a GPU",
                     least=1))),
    Method(lrp, "LRP", "relevance", "Layer-wise relevance propagation: the score is handed back layer by layer, "
           "each layer sharing it among its inputs by their contributions, so the map adds up to the score.", (
               Param("epsilon", float, "the epsilon rule's stabiliser in the dense layers", least=0),), fast=True),
    Method(baselines.random, "Random", "baselines", "Grad-CAM's layer weighed by random numbers instead of the "
           "class's gradients: blobs that know nothing of the class. A method no better than this on a "
           "faithfulness score tells nothing.", (
               Param("seed", int, "the seed of the random weights"), _LAYER), fast=True),
    Method(baselines.edges, "Edges", "baselines", "The picture's edges (a Sobel filter), with no network at all: "
           "many maps look like this, so a method should beat it.", fast=True),
)}


def grouped(names=None) -> dict[str, list[str]]:
    """The methods (all, or those in `names`) by group, in the order of GROUPS and METHODS."""
    chosen = [m for m in METHODS.values() if names is None or m.name in names]
    return {g: [m.name for m in chosen if m.group == g] for g in GROUPS if any(m.group == g for m in chosen)}


def get_method(name: str) -> Method:
    """The registry's entry for a method string; ValueError with the choices when there is none."""
    if name not in METHODS:
        raise ValueError(f"Unknown attribution method {name!r}; choose one of: {', '.join(METHODS)}.")
    return METHODS[name]


@falls_back
def attribute(model: Model, x: torch.Tensor, method: str, target: int | None = None, **params) -> torch.Tensor:
    """The method's map [H,W] (CPU, float32) of class `target` (None: the top class) for x [1,3,H,W];
    `params` are the method's (METHODS[method].params), checked: ValueError with one sentence."""
    entry = get_method(method)
    return entry.function(model, x, target, **entry.check(params))
