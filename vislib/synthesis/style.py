"""Texture and style: Gram matrices, the layers they come from, and activation smoothing.

Gatys et al. (2015, 2016) describe a texture by the Gram matrices of a network's activations
(which channels fire together, wherever they fire) and a picture's content by the activations
themselves. Wang et al. (CVPR 2021) found why this works far better on VGG than on ResNet or
EfficientNet: those networks' activations are peaky (a few huge values, low entropy), so their
Grams are dominated by a handful of entries. Passing the activations through a softmax first
("SWAG", Stylization With Activation smoothinG) spreads them out and makes any network usable.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from vislib.optvis import optimize as O
from vislib.activations import capture
from vislib.models.zoo import Model

VGG = ("vgg16", "vgg19")
# Gatys et al. 2016: relu1_1 ... relu5_1 for style, relu4_2 for content (indices in `features`).
_VGG_STYLE = {"vgg16": [1, 6, 11, 18, 25], "vgg19": [1, 6, 11, 20, 29]}
_VGG_CONTENT = {"vgg16": 20, "vgg19": 22}
TEMPERATURE = 2.0
JUDGE_LAYERS = ["blocks.1", "blocks.2", "blocks.3", "blocks.4"]  # EfficientNet stages 1-4


# ---------------------------------------------------------------- the pieces of the losses

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
    return f"layer{stage}.{len(getattr(model.net, f'layer{stage}')) - 1}"


def deeper_layer_sets(model: Model) -> list[list[str]]:
    """Growing sets of the preset style layers (first one, first two, ...): Gatys et al. 2015's
    figure showing that deeper Grams keep larger structures of the texture."""
    layers = style_layers(model)
    return [layers[: i + 1] for i in range(len(layers))]


# ---------------------------------------------------------------- objectives for the engine

@O.objective
def style_match(layer: str, target_gram: torch.Tensor, temperature: float | None = None):
    """Gatys' Gram loss of one layer, relative to the target's size so that every layer counts
    alike whatever its scale (the engine's gram_match), on activations smoothed at `temperature`
    (None: not smoothed)."""
    norm = target_gram.pow(2).sum().clamp_min(1e-12)
    return (lambda a: (O.gram(_smoothed(a[layer], temperature)) - target_gram).pow(2).sum() / norm), (layer,)


@O.objective
def content_match(layer: str, target: torch.Tensor, temperature: float | None = None):
    """Gatys' content loss, relative to the target's size, on activations smoothed at `temperature`."""
    norm = target.pow(2).sum().clamp_min(1e-12)
    return (lambda a: (_smoothed(a[layer], temperature) - target).pow(2).sum() / norm), (layer,)


def _smoothed(features: torch.Tensor, temperature: float | None) -> torch.Tensor:
    return features.float() if temperature is None else smooth(features.float(), temperature)


class Targets:
    """A picture's activations at some layers (on the model's device), and the smoothing that
    goes with them; `style()` and `content()` are objectives that pull another picture there."""

    def __init__(self, model: Model, picture: torch.Tensor, layers: list[str], smoothing: bool):
        _, seen = capture(model, O.normalise(model, picture), layers)
        self.temperatures = {n: temperature(seen[n]) if smoothing else None for n in layers}
        self.acts = {n: _smoothed(seen[n], self.temperatures[n]).to(model.device) for n in layers}

    def style(self) -> O.Objective:
        """The mean of the layers' Gram losses."""
        terms = [style_match(n, O.gram(t), self.temperatures[n]) for n, t in self.acts.items()]
        return sum(terms[1:], terms[0]) / len(terms)

    def content(self) -> O.Objective:
        """The mean of the layers' content losses."""
        terms = [content_match(n, t, self.temperatures[n]) for n, t in self.acts.items()]
        return sum(terms[1:], terms[0]) / len(terms)


def noise(size: int, seed: int = 0) -> torch.Tensor:
    """Gatys' start for a texture: uniform noise [1,3,size,size] in 0-1 (reproducible by seed)."""
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def fit(picture: Image.Image, size: int | tuple[int, int]) -> torch.Tensor:
    """The picture as a [1,3,H,W] 0-1 tensor whose shorter side is `size` (aspect kept), or of
    exactly `size` = (H, W)."""
    picture = TF.resize(picture.convert("RGB"), list(size) if isinstance(size, tuple) else size, antialias=True)
    return TF.to_dtype(TF.pil_to_tensor(picture), torch.float32, scale=True)[None]


def gram_loss(model: Model, image: Image.Image, style: Image.Image, size: int, layers: list[str] | None = None,
              smoothing: bool | None = None) -> float:
    """The Gram loss of a finished picture (the quantity texture and style transfer lower), for
    figures like "reduced 20x from the start"; both pictures are fitted to `size`."""
    layers = layers or style_layers(model)
    smoothing = smoothing_default(model) if smoothing is None else smoothing
    loss = Targets(model, fit(style, size), layers, smoothing).style()
    _, seen = capture(model, O.normalise(model, fit(image, size)), layers)
    return float(loss({n: v.to(model.device) for n, v in seen.items()}))


def render_scales(model: Model, make_objective: Callable[[tuple[int, int]], O.Objective], start: torch.Tensor,
                  scales: int, steps: int, progress=None, **render_args) -> torch.Tensor:
    """Multi-scale optimisation (Gatys et al. 2017, "Controlling perceptual factors"): optimise
    at 1/2**(scales-1) of the size, upsample the result, continue, ..., up to full size; coarse
    scales settle the large structures cheaply. `start` [1,3,H,W] 0-1 at full size;
    `make_objective((H, W))` builds the objective for one scale. Steps are split evenly.
    """
    h, w = start.shape[-2:]
    image, done, stopped = start, 0, []

    def watch(offset):
        inner = O.sub_progress(progress, offset, steps)

        def call(*args, **kwargs):
            answer = inner(*args, **kwargs)
            stopped.extend([True] if answer is False else [])
            return answer
        return call if inner else None

    for i in range(scales):
        factor = 2 ** (scales - 1 - i)
        size = (max(8, h // factor), max(8, w // factor))
        n = steps // scales + (steps % scales if i == scales - 1 else 0)
        image = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        image = O.render(model, make_objective(size), O.pixels(init=image, device=model.device),
                         steps=n, progress=watch(done), **render_args)
        done += n
        if stopped:
            break
    return image if image.shape[-2:] == (h, w) else \
        F.interpolate(image, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


JUMP = 2.0  # a loss over this many times the best so far is a blow-up, not L-BFGS's usual wobble


def render_restarting(model: Model, objective: O.Objective, param: O.Param, steps: int, progress=None,
                      **render_args) -> torch.Tensor:
    """`optimize.render`, but a step after which the loss jumps (over JUMP times the best so far)
    is undone: back to the best parameters, on with a fresh optimiser (a fresh L-BFGS history).
    Returns the image of the best parameters seen (the last step's loss is never computed).

    L-BFGS without a line search now and then takes a huge step; on the Fourier image that lands
    in the flat tails of its sigmoid, where no gradient leads back (a flat black and white
    picture, further from the sample than noise). In 150 steps on lite0 this happened never with
    the preset layers but up to 30 times with the first layer alone (the page's row of layer
    sets). Undone steps count towards `steps`.
    """
    best = {"loss": math.inf, "x": [t.detach().clone() for t in param.tensors]}
    done, stopped = 0, []
    while done < steps and not stopped:
        run = {"steps": 0, "jumped": False, "x": [t.detach().clone() for t in param.tensors]}

        def watch(step, _total, preview=None, loss=None, **info):
            run["steps"] = step
            if loss is not None and loss > JUMP * best["loss"]:
                run["jumped"] = True
                return False
            if loss is not None and loss < best["loss"]:  # the loss is that of the parameters before this step
                best["loss"], best["x"] = loss, run["x"]
            run["x"] = [t.detach().clone() for t in param.tensors]
            if progress is not None and progress(done + step, steps, preview, loss=loss, **info) is False:
                stopped.append(True)
                return False
        O.render(model, objective, param, steps=steps - done, progress=watch, **render_args)
        done += run["steps"]
        with torch.no_grad():
            for t, x in zip(param.tensors, best["x"]):
                t.copy_(x)
        if not run["jumped"]:
            break
    return param.make_image().detach()


# ---------------------------------------------------------------- the judge

def _judge_input(model: Model, image: Image.Image, size: int) -> torch.Tensor:
    image = image.convert("RGB")
    scale = size / min(image.size)
    w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((w, h), Image.Resampling.BICUBIC)
    left, top = (w - size) // 2, (h - size) // 2
    x = torch.from_numpy(np.array(image.crop((left, top, left + size, top + size)))).permute(2, 0, 1).float() / 255
    mean, std = torch.tensor(model.mean).view(3, 1, 1), torch.tensor(model.std).view(3, 1, 1)
    return ((x - mean) / std).contiguous()


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


# ---------------------------------------------------------------- built-in pictures

def _skimage_texture(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from skimage import data
        return Image.fromarray(getattr(data, name)()).convert("RGB")
    return load


def mosaic(size: int = 384, cells: int = 60, seed: int = 0) -> Image.Image:
    """A colourful stained-glass pattern made here (Voronoi cells with dark leads)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, size, (cells, 2))
    colours = (np.stack([np.abs(np.sin(rng.uniform(0, math.pi, cells) + k)) for k in (0, 2.1, 4.2)], 1) * 230 + 20)
    yy, xx = np.mgrid[0:size, 0:size]
    d = np.hypot(xx[..., None] - points[:, 0], yy[..., None] - points[:, 1])
    nearest = np.sort(d, axis=-1)
    picture = colours[d.argmin(-1)]
    picture[(nearest[..., 1] - nearest[..., 0]) < 3] = 25  # the leads between cells
    return Image.fromarray(picture.astype(np.uint8))


def waves(size: int = 384) -> Image.Image:
    """Swirling colour bands made here (hue follows a warped sine field)."""
    yy, xx = np.mgrid[0:size, 0:size] / size * 2 * math.pi
    field = np.sin(3 * xx + 2 * np.sin(2 * yy)) + np.sin(4 * yy + 1.5 * np.cos(3 * xx))
    hue = (field + 2) / 4
    rgb = np.stack([0.5 + 0.5 * np.cos(2 * math.pi * (hue + k)) for k in (0, 1 / 3, 2 / 3)], -1)
    stripes = 0.6 + 0.4 * np.sin(12 * field)[..., None]
    return Image.fromarray((rgb * stripes * 255).clip(0, 255).astype(np.uint8))


def texture_samples() -> dict[str, Callable[[], Image.Image]]:
    """Sample textures and style pictures, as name -> loader: scikit-image's bundled textures
    and two patterns the project draws itself (no paintings under copyright)."""
    return {"brick": _skimage_texture("brick"), "grass": _skimage_texture("grass"),
            "gravel": _skimage_texture("gravel"), "mosaic": mosaic, "waves": waves}
