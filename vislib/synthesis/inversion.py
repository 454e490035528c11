"""Feature inversion: what a layer remembers of a picture, reconstructed from its features alone
(Mahendran and Vedaldi 2015)."""
from __future__ import annotations

import torch
from PIL import Image

from vislib import optvis as O
from vislib.activations import capture
from vislib.models import Model
from vislib.runtime import Progress, falls_back


def network_input(model: Model, image: Image.Image) -> torch.Tensor:
    """The picture as the network sees it (resized, cropped), [1,3,S,S] in 0-1."""
    return model.preprocessing.denormalise(model.preprocess(image)[None].to(model.device))


def features(model: Model, image: torch.Tensor, layer: str) -> torch.Tensor:
    """The layer's output [1,C,H,W] for a [1,3,S,S] 0-1 image."""
    _, seen = capture(model, model.preprocessing.normalise(image), [layer])
    return seen[layer].to(model.device)


def feature_error(model: Model, image: torch.Tensor, layer: str, target: torch.Tensor) -> float:
    """Squared distance of the image's features to `target` over the target's squared norm."""
    return float((features(model, image, layer) - target).pow(2).sum() / target.pow(2).sum())


@falls_back
def invert(model: Model, image: Image.Image, layer: str, steps: int = 200, seed: int = 0,
           progress: Progress | None = None, tv: float = 5e-4, lr: float = 0.05) -> Image.Image:
    """Reconstruct the picture from `layer`'s features alone.

    From noise, minimise the feature distance (over the target's norm) plus `tv` times the
    total variation, which asks for a natural-looking, piecewise smooth image.
    """
    target = features(model, network_input(model, image), layer)
    objective = -O.feature_match(layer, target) - tv * O.total_variation()
    param = O.pixels(model.input_size, seed=seed, device=model.device)
    return O.to_pil(O.render(model, objective, param, steps=steps, lr=lr, seed=seed, progress=progress))


@falls_back
def inversion_row(model: Model, image: Image.Image, layers: list[str] | None = None, steps: int = 200,
                  seed: int = 0, progress: Progress | None = None, **settings) -> list[tuple[str, Image.Image]]:
    """Reconstructions from shallow to deep layers (default: five spread over the catalogue),
    `steps` each; a stop ends the row with the picture it stopped."""
    if layers is None:
        names = [info.name for info in model.layers()]
        layers = [names[round(i * (len(names) - 1) / 4)] for i in range(5)]
    for layer in layers:
        model.module(layer)
    return O.row(progress, layers, steps, lambda layer, part: invert(model, image, layer, steps=steps, seed=seed,
                                                                      progress=part, **settings))
