"""Texture synthesis and style transfer (Gatys et al. 2015, 2016; smoothing of Wang et al. 2021):
the entry points, built from the pieces in `synthesis.style`. bench/README.md has the figures
behind the defaults."""
from __future__ import annotations

from PIL import Image

from vislib import optvis as O
from vislib.models import Model
from vislib.runtime import Progress, falls_back
from vislib.synthesis import style as S

STYLE_WEIGHT = 10  # style against content, both losses relative to their targets' size
TV_WEIGHT = 0.5  # total variation per pixel, against the Gram loss of a texture grown from pixel noise


def _lr(optimizer: str, param: str = "pixels") -> float:
    """The default learning rate: L-BFGS's unit step, Lucid's Adam rate on the spectrum, else 0.02."""
    if optimizer == "lbfgs":
        return 1.0
    return 0.05 if optimizer == "adam" and param == "fourier" else 0.02


def _smoothness(hw: tuple[int, int], tv: float) -> O.Objective:
    """Total variation per pixel: the networks barely see pixel-level colour noise, so nothing
    else removes what the start had (Mahendran and Vedaldi 2015; Johnson et al. 2016)."""
    return O.total_variation() * (tv / (hw[0] * hw[1]))


def _settings(model: Model, layers, smoothing: bool | None) -> tuple[list[str], bool]:
    """The style layers (checked, before any work) and whether to smooth, presets filling in."""
    layers = layers or S.style_layers(model)
    for name in layers:
        model.module(name)
    return layers, S.smoothing_default(model) if smoothing is None else smoothing


@falls_back
def texture(model: Model, texture_image: Image.Image, size: int = 256, steps: int = 200, layers=None, seed: int = 0,
            progress: Progress | None = None, smoothing: bool | None = None, optimizer: str = "lbfgs",
            param: str = "fourier", lr: float | None = None, tv: float | None = None) -> Image.Image:
    """Gatys et al. 2015: an image changed until its Gram matrices match the sample's.

    `param` "fourier" (default): Lucid's decorrelated Fourier image, whose 1/frequency spectrum
    moves large structures as fast as small ones and whose decorrelated colours keep out the
    colour noise the networks hardly see; "pixels": Gatys' uniform noise, pixel by pixel.
    `layers` default to `style.style_layers(model)`. With `smoothing` (Wang et al. 2021; default
    on except on VGG) the smoothed Grams AND the plain ones are matched: the softmax stresses the
    strongest activations, the plain Grams keep the rest. `tv` weighs total variation (default
    TV_WEIGHT for pixels, 0 for Fourier, whose spectrum already damps pixel noise). One scale
    (coarse-to-fine gave no better textures). L-BFGS for quality (`optvis.render_restarting`
    undoes its rare blow-ups), Adam for smoother previews.
    """
    if param not in ("fourier", "pixels"):
        raise ValueError(f"Unknown parameterisation {param!r}; choose fourier or pixels.")
    layers, smoothing = _settings(model, layers, smoothing)
    tv = (TV_WEIGHT if param == "pixels" else 0.0) if tv is None else tv
    sample = S.fit(texture_image, size)
    terms = [S.Targets(model, sample, layers, on).style() for on in ([True, False] if smoothing else [False])]
    objective = -(sum(terms[1:], terms[0]) + _smoothness((size, size), tv))
    start = O.fourier(size, seed=seed, device=model.device) if param == "fourier" else \
        O.pixels(init=S.noise(size, seed), device=model.device)
    image = O.render_restarting(model, objective, start, steps, progress, optimizer=optimizer,
                                lr=lr or _lr(optimizer, param), seed=seed)
    return O.to_pil(image)


@falls_back
def style_transfer(model: Model, content: Image.Image, style: Image.Image, steps: int = 200, size: int = 256,
                   style_weight: float | None = None, content_layer: str | None = None, style_layers=None,
                   seed: int = 0, progress: Progress | None = None, smoothing: bool | None = None,
                   optimizer: str = "lbfgs", scales: int = 2, lr: float | None = None, tv: float = 0.0) -> Image.Image:
    """Gatys et al. 2016: the content photo (shorter side `size`) changed until its Gram matrices
    match the style picture's while its `content_layer` activations stay the photo's; started
    from the photo (no noise, so `tv` 0), at `scales` sizes. Defaults as in `texture`;
    `style_weight` STYLE_WEIGHT.
    """
    layers, smoothing = _settings(model, style_layers, smoothing)
    content_layer = content_layer or S.content_layer(model)
    model.module(content_layer)
    weight = STYLE_WEIGHT if style_weight is None else style_weight

    def objective(hw: tuple[int, int]) -> O.Objective:
        style_targets = S.Targets(model, S.fit(style, min(hw)), layers, smoothing)
        content_targets = S.Targets(model, S.fit(content, hw), [content_layer], smoothing)
        return -(weight * style_targets.style() + content_targets.content() + _smoothness(hw, tv))
    image = O.render_scales(model, objective, S.fit(content, size), scales, steps, progress, optimizer=optimizer,
                            lr=lr or _lr(optimizer), seed=seed)
    return O.to_pil(image)


@falls_back
def texture_row(model: Model, texture_image: Image.Image, steps: int = 200, progress: Progress | None = None,
                **settings) -> list[tuple[list[str], Image.Image]]:
    """Textures matched with growing sets of layers (`style.deeper_layer_sets`), `steps` each:
    Gatys et al. 2015's figure, where deeper Grams keep larger structures."""
    return O.row(progress, S.deeper_layer_sets(model), steps, lambda layers, part: texture(
        model, texture_image, steps=steps, layers=layers, progress=part, **settings))


@falls_back
def smoothing_pair(model: Model, content: Image.Image, style: Image.Image, steps: int = 200,
                   progress: Progress | None = None, **settings) -> list[tuple[bool, Image.Image]]:
    """The same style transfer without and with activation smoothing, `steps` each."""
    return O.row(progress, [False, True], steps, lambda on, part: style_transfer(
        model, content, style, steps=steps, smoothing=on, progress=part, **settings))
