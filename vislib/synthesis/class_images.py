"""Class images: a picture the network takes for a class, from noise (Simonyan et al. 2014,
Yosinski et al. 2015, Olah et al. 2017), with the papers' regularisers one preset away."""
from __future__ import annotations

import torch
from PIL import Image

from vislib import optvis as O
from vislib.models import Model
from vislib.runtime import Progress, falls_back

# Yosinski et al. 2015's four regulariser combinations are their paper's columns (L2 decay, blur
# width, blur every, norm-clipping percentile, contribution percentile); steps use Adam on 0-1
# pixels instead of their Caffe-scale SGD, so `lr` is ours.
PRESETS: dict[str, dict] = {
    "Simonyan 2014": dict(param="pixels", l2=1e-3, lr=0.05),
    "Yosinski 2015 (1)": dict(param="pixels", decay=0.0, blur_sigma=0.5, blur_every=4, norm_percentile=50,
                              contribution_percentile=0, lr=0.05),
    "Yosinski 2015 (2)": dict(param="pixels", decay=0.3, blur_sigma=0.0, blur_every=0, norm_percentile=20,
                              contribution_percentile=0, lr=0.05),
    "Yosinski 2015 (3)": dict(param="pixels", decay=0.0001, blur_sigma=1.0, blur_every=4, norm_percentile=0,
                              contribution_percentile=0, lr=0.05),
    "Yosinski 2015 (4)": dict(param="pixels", decay=0.0, blur_sigma=0.5, blur_every=4, norm_percentile=0,
                              contribution_percentile=90, lr=0.05),
    "Robust": dict(param="fourier", transforms=True, lr=0.05),
}
DEFAULT_PRESET = "Robust"
REGULARISERS = ("param", "l2", "tv", "decay", "blur_sigma", "blur_every", "norm_percentile",
                "contribution_percentile", "transforms", "lr", "optimizer")


def _image_ops(s: dict) -> list[O.ImageOp]:
    ops = []
    if s.get("decay"):
        ops.append(O.decay(s["decay"]))
    if s.get("blur_sigma") and s.get("blur_every"):
        ops.append(O.blur(s["blur_sigma"], s["blur_every"]))
    if s.get("norm_percentile"):
        ops.append(O.clip_small_norm(s["norm_percentile"]))
    if s.get("contribution_percentile"):
        ops.append(O.clip_small_contribution(s["contribution_percentile"]))
    return ops


@falls_back
def class_visualization(model: Model, target: int, steps: int = 200, seed: int = 0, preset: str = DEFAULT_PRESET,
                        size: int | None = None, progress: Progress | None = None, **regularisers) -> Image.Image:
    """An image the network takes for class `target`: its logit maximised under a preset's regularisers.

    `preset` is a key of PRESETS; `regularisers` override its values: param ("pixels" or
    "fourier"), l2 and tv (weights), decay, blur_sigma, blur_every, norm_percentile,
    contribution_percentile (Yosinski's image operations, pixels only), transforms (bool),
    lr, optimizer. `size` defaults to the network's input size.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
    unknown = set(regularisers) - set(REGULARISERS)
    if unknown:
        raise ValueError(f"Unknown setting {sorted(unknown)[0]!r}; the settings are: {', '.join(REGULARISERS)}.")
    s = {**PRESETS[preset], **regularisers}
    objective = O.class_logit(target)
    if s.get("l2"):
        objective = objective - s["l2"] * O.l2()
    if s.get("tv"):
        objective = objective - s["tv"] * O.total_variation()
    size = size or model.input_size
    make = O.fourier if s.get("param") == "fourier" else O.pixels
    image = O.render(model, objective, make(size, seed=seed, device=model.device),
                     O.standard_transforms() if s.get("transforms") else [], optimizer=s.get("optimizer", "adam"),
                     steps=steps, lr=s.get("lr", 0.05), seed=seed, image_ops=_image_ops(s), progress=progress)
    return O.to_pil(image)


def probabilities(model: Model, image: torch.Tensor) -> torch.Tensor:
    """Class probabilities [K] of a [1,3,H,W] 0-1 image fed to the network as it is (no resizing)."""
    return model.probabilities(model.preprocessing.normalise(image.to(model.device)))[0]


def top_classes(model: Model, picture: Image.Image, k: int = 5) -> list[tuple[int, str, float]]:
    """The top-k classes of a picture fed to the network as it is (a class image is not resized)."""
    return model.ranked(probabilities(model, O.from_pil(picture, model.device)).cpu(), k)
