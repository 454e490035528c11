"""Texture and style: Gram matrices, the layers they come from, and activation smoothing.

Gatys et al. (2015, 2016) describe a texture by the Gram matrices of a network's activations
(which channels fire together, wherever they fire) and a picture's content by the activations
themselves. Wang et al. (CVPR 2021) found why this works far better on VGG than on ResNet or
EfficientNet: those networks' activations are peaky (a few huge values, low entropy), so their
Grams are dominated by a handful of entries. Passing the activations through a softmax first
("SWAG", Stylization With Activation smoothinG) spreads them out and makes any network usable.

The entry points that use these pieces are in `synthesis.texture_style`; `vislib.style` is this module.
"""
from __future__ import annotations

import functools

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from vislib import optvis as O
from vislib.activations import capture
from vislib.models import Model
from vislib.optvis.render import render_restarting, render_scales  # noqa: F401 - vislib.style's old names
from vislib.synthesis.samples import mosaic, texture_samples, waves  # noqa: F401 - vislib.style's old names

VGG = ("vgg16", "vgg19")
# Gatys et al. 2016: relu1_1 ... relu5_1 for style, relu4_2 for content (indices in `features`).
_VGG_STYLE = {"vgg16": [1, 6, 11, 18, 25], "vgg19": [1, 6, 11, 20, 29]}
_VGG_CONTENT = {"vgg16": 20, "vgg19": 22}
TEMPERATURE = 2.0
JUDGE_LAYERS = ["blocks.1", "blocks.2", "blocks.3", "blocks.4"]  # EfficientNet stages 1-4


# ---------------------------------------------------------------- smoothing

def smooth(features: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Wang et al. 2021's activation smoothing: a softmax over ALL of a layer's values (every
    channel at every position) of each image, as in the paper's equation and its code.

    Multiplied by the number of values so that the mean is 1: the losses below are relative to
    their targets' size, so the scale does not change the result, and float32 keeps its precision.
    """
    flat = features.flatten(1)
    return (flat / temperature).softmax(dim=1).mul(flat.shape[1]).view_as(features)


def temperature(target: torch.Tensor) -> float:
    """The softmax temperature for a layer: TEMPERATURE times its target activations' spread.

    The paper's T=1 suits ResNet-50's small activations; EfficientNet's reach 30 (6 standard
    deviations), where a softmax at T=1 puts all its mass on the top 1% of values and the
    loss stops giving gradients. Scaling T by the spread makes the smoothing alike on any network.
    """
    return TEMPERATURE * float(target.float().std().clamp_min(1e-6))


def smoothing_default(model: Model) -> bool:
    """Smoothing is on for every network but VGG, whose Gram style transfer works as it is."""
    return model.arch not in VGG


# ---------------------------------------------------------------- which layers

def style_layers(model: Model) -> list[str]:
    """The preset style layers: Gatys' relu1_1..relu5_1 on VGG, SWAG's stage ends on ResNet,
    and for the other networks the last layer at each stride from 2 to 16 plus the first at 32
    (one Gram per scale of pattern, the idea behind Gatys' choice)."""
    if model.arch in VGG:
        return [f"features.{i}" for i in _VGG_STYLE[model.arch]]
    if model.arch.startswith("resnet"):
        return ["relu"] + [_last_block(model, s) for s in range(1, 5)]
    by_stride: dict[int, list[str]] = {}
    for info in model.layers():
        by_stride.setdefault(info.stride, []).append(info.name)
    strides = sorted(by_stride)
    return [by_stride[s][-1] for s in strides if s < 32] + [by_stride[s][0] for s in strides if s >= 32][:1]


def content_layer(model: Model) -> str:
    """The preset content layer: relu4_2 on VGG, as in Gatys et al.; elsewhere the last layer at
    stride 8 (relu4_2's depth in VGG), deep enough to let the style change the details."""
    if model.arch in VGG:
        return f"features.{_VGG_CONTENT[model.arch]}"
    if model.arch.startswith("resnet"):
        return _last_block(model, 2)
    at8 = [info.name for info in model.layers() if info.stride == 8]
    return at8[-1] if at8 else style_layers(model)[len(style_layers(model)) // 2]


def _last_block(model: Model, stage: int) -> str:
    return f"layer{stage}.{len(model.module(f'layer{stage}')) - 1}"


def deeper_layer_sets(model: Model) -> list[list[str]]:
    """Growing sets of the preset style layers (first one, first two, ...): Gatys et al. 2015's
    figure showing that deeper Grams keep larger structures of the texture."""
    layers = style_layers(model)
    return [layers[: i + 1] for i in range(len(layers))]


# ---------------------------------------------------------------- targets and losses

class Targets:
    """A picture's activations at some layers (on the model's device), smoothed or not; `style()`
    and `content()` are objectives that pull another picture there."""

    def __init__(self, model: Model, picture: torch.Tensor, layers: list[str], smoothing: bool):
        _, seen = capture(model, model.preprocessing.normalise(picture), layers)
        # The same smoothing for the target and for the picture being optimised, per layer.
        self.through = {n: functools.partial(smooth, temperature=temperature(seen[n])) if smoothing else None
                        for n in layers}
        self.acts = {n: (seen[n] if f is None else f(seen[n])).to(model.device) for n, f in self.through.items()}

    def style(self) -> O.Objective:
        """The mean of the layers' Gram losses (each relative to its target's size)."""
        return _mean([O.gram_match(n, O.gram(t), through=self.through[n]) for n, t in self.acts.items()])

    def content(self) -> O.Objective:
        """The mean of the layers' content losses (each relative to its target's size)."""
        return _mean([O.feature_match(n, t, through=self.through[n]) for n, t in self.acts.items()])


def _mean(terms: list[O.Objective]) -> O.Objective:
    return sum(terms[1:], terms[0]) / len(terms)


def noise(size: int, seed: int = 0) -> torch.Tensor:
    """Gatys' start for a texture: uniform noise [1,3,size,size] in 0-1 (reproducible by seed)."""
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def fit(picture: Image.Image, size: int | tuple[int, int]) -> torch.Tensor:
    """The picture as a [1,3,H,W] 0-1 tensor whose shorter side is `size` (aspect kept), or of
    exactly `size` = (H, W)."""
    return O.from_pil(TF.resize(picture.convert("RGB"), list(size) if isinstance(size, tuple) else size,
                                antialias=True))


def gram_loss(model: Model, image: Image.Image, style: Image.Image, size: int, layers: list[str] | None = None,
              smoothing: bool | None = None) -> float:
    """The Gram loss of a finished picture (the quantity texture and style transfer lower), for
    figures like "reduced 20x from the start"; both pictures are fitted to `size`."""
    layers = layers or style_layers(model)
    smoothing = smoothing_default(model) if smoothing is None else smoothing
    loss = Targets(model, fit(style, size), layers, smoothing).style()
    _, seen = capture(model, model.preprocessing.normalise(fit(image, size)), layers)
    return float(loss({n: v.to(model.device) for n, v in seen.items()}))


# ---------------------------------------------------------------- the judge

def _judge_input(model: Model, image: Image.Image, size: int) -> torch.Tensor:
    """The picture's centre square of `size`, after scaling its shorter side to `size`, normalised."""
    image = image.convert("RGB")
    scale = size / min(image.size)
    w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((w, h), Image.Resampling.BICUBIC)
    left, top = (w - size) // 2, (h - size) // 2
    return model.preprocessing.normalise(O.from_pil(image.crop((left, top, left + size, top + size)))[0])


def gram_distance(judge_model: Model, a: Image.Image, b: Image.Image, size: int = 128,
                  layers: list[str] | None = None) -> float:
    """How far a's style is from b's, seen by a network: for each layer (default: EfficientNet's
    stages 1-4) the squared distance of the Gram matrices over the squared norm of b's, averaged
    over the layers. 0 for the same picture; about 1 for unrelated ones."""
    layers = layers or JUDGE_LAYERS
    batch = torch.stack([_judge_input(judge_model, a, size), _judge_input(judge_model, b, size)])
    _, seen = capture(judge_model, batch, layers)
    ratios = []
    for name in layers:
        g = O.gram(seen[name].double())
        ratios.append(float((g[0] - g[1]).square().sum() / g[1].square().sum()))
    return sum(ratios) / len(ratios)
