"""Feature visualisation of any unit: the picture that excites a channel (or its centre cell) most,
grown by gradient ascent on the one optimisation engine (vislib.optvis).

Many channels are optimised at once as one batch, one image each: the images do not interact (the
network is in eval mode, Adam works element by element), so a batch gives each channel what a run
of its own would. Networks with a tiny input (fashion_cnn's 28 px) are rendered on a larger canvas
that the network sees resized to its own input size, so the result is large enough to look at
without being a blurry upscale of a 28 px image (lucent #10).
"""
from __future__ import annotations

import functools
import operator

import torch
import torch.nn.functional as F
from PIL import Image

from vislib.models import Model
from vislib.optvis import (Objective, Param, blur, channel, decay, fourier, jitter, neuron, objective, pixels, render,
                           standard_transforms, to_pil)
from vislib.runtime import Progress, report

PRESETS = {
    # Olah et al. 2017: a decorrelated Fourier image, robust to small shifts, zooms and turns.
    "Lucid": dict(param="fourier", lr=0.05),
    # The lecture's regularised pixels (Yosinski et al. 2015): L2 decay and a blur every few steps.
    "Yosinski 2015": dict(param="pixels", lr=0.05, decay=1e-4, blur_sigma=1.0, blur_every=4),
}
DEFAULT_PRESET = "Lucid"
MIN_CANVAS = 112  # pixels: below this a picture is too small to look at


def canvas_size(model: Model) -> int:
    """The network's own input size, or a multiple of it of at least MIN_CANVAS pixels."""
    s = model.input_size
    return s if s >= MIN_CANVAS else s * -(-MIN_CANVAS // s)


def _seen_at(size: int):
    """A transform: the canvas as the network sees it, resized to its input size."""
    def t(x, _gen):
        return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                                           align_corners=False)
    return t


@objective
def gram_diversity(layer: str):
    """Minus the mean cosine similarity between the images' Gram matrices at `layer` (Olah et al.
    2017): maximising it pushes a batch of images for one unit towards different styles."""
    def fn(a):
        t = a[layer].float()
        n, c = t.shape[:2]
        flat = t.reshape(n, c, -1)
        grams = F.normalize((flat @ flat.transpose(1, 2)).reshape(n, -1), dim=1)
        similarity = grams @ grams.T
        return -(similarity.sum() - similarity.diagonal().sum()) / max(n * (n - 1), 1)
    return fn, (layer,)


def _setup(preset: str, size: int, seeds: list[int], device):
    """(param, transforms, image operations, learning rate): one image per seed, each started from
    its own seed, so an image comes out the same in any batch."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
    p = PRESETS[preset]
    if p["param"] == "fourier":
        parts = [fourier(size, seed=s, device=device) for s in seeds]
        param = Param([t for part in parts for t in part.tensors], lambda: torch.cat([q.make_image() for q in parts]))
        return param, standard_transforms(), [], p["lr"]
    start = torch.cat([pixels(size, seed=s, device="cpu").pixels.detach() for s in seeds])
    return (pixels(init=start, device=device), [jitter(4)],
            [decay(p["decay"]), blur(p["blur_sigma"], p["blur_every"])], p["lr"])


def _unit(layer: str, index: int, kind: str, batch: int | None) -> Objective:
    if kind == "channel":
        return channel(layer, index, batch=batch)
    if kind == "neuron":
        return neuron(layer, index, batch=batch)
    raise ValueError(f"Unknown objective {kind!r}; choose channel or neuron.")


def _render(model: Model, goal: Objective, seeds: list[int], *, steps: int, size: int | None, seed: int, preset: str,
            progress: Progress | None) -> list[Image.Image]:
    size = size or canvas_size(model)
    param, transforms, ops, lr = _setup(preset, size, seeds, model.device)
    transforms = [*transforms, _seen_at(model.input_size)]
    images = render(model, goal, param, transforms, steps=steps, lr=lr, seed=seed, image_ops=ops, progress=progress)
    return [to_pil(image[None]) for image in images]


def feature_visualizations(model: Model, layer: str, channels: list[int], *, steps: int = 256, size: int | None = None,
                           seed: int = 0, preset: str = DEFAULT_PRESET, negative: bool = False,
                           objective: str = "channel", progress: Progress | None = None) -> list[Image.Image]:
    """One picture per channel of `channels`, all optimised together as one batch on the device (a
    layer or channel the network does not have is one sentence before any work: optvis.check)."""
    sign = -1.0 if negative else 1.0
    goal = functools.reduce(operator.add, (sign * _unit(layer, c, objective, i) for i, c in enumerate(channels)))
    seeds = [seed * 100_003 + c for c in channels]  # a channel's own start, whatever batch it is in
    return _render(model, goal, seeds, steps=steps, size=size, seed=seed, preset=preset, progress=progress)


def feature_visualization(model: Model, layer: str, channel: int, *, n: int = 1, size: int | None = None,
                          steps: int = 256, seed: int = 0, diversity: float = 0.0, negative: bool = False,
                          objective: str = "channel", preset: str = DEFAULT_PRESET,
                          progress: Progress | None = None) -> list[Image.Image]:
    """`n` pictures that excite (or with `negative`, suppress) one unit; with `diversity` > 0 they
    are pushed apart (1.0 is the recommended strength)."""
    sign = -1.0 if negative else 1.0
    goal = sign * _unit(layer, channel, objective, None)
    if diversity > 0 and n > 1:
        goal = _with_diversity(goal, gram_diversity(layer), diversity * DIVERSITY_SCALE)
    seeds = [seed * 100_003 + channel + 7919 * i for i in range(n)]
    return _render(model, goal, seeds, steps=steps, size=size, seed=seed, preset=preset, progress=progress)


# The penalty is a cosine similarity (no unit), the unit's activation is in the layer's own units,
# which differ a hundredfold between layers and networks; so the penalty is weighted by the size of
# the activation itself. 0.15 was chosen on lite0 (bench/units.py): the pictures' similarity drops
# well past 0.1 while each keeps over 80% of the plain visualisation's activation.
DIVERSITY_SCALE = 0.15


def _with_diversity(goal: Objective, spread: Objective, weight: float) -> Objective:
    def fn(acts):
        value = goal(acts)
        return value + weight * value.detach().abs() * spread(acts)
    return Objective(fn, f"{goal.name} + {weight:g} |.| {spread.name}", goal.layers + spread.layers, goal.reads)


def feature_visualization_set(model: Model, layer: str, channel: int, *, steps: int = 256, size: int | None = None,
                              seed: int = 0, preset: str = DEFAULT_PRESET, diverse: int = 4,
                              progress: Progress | None = None) -> dict[str, Image.Image]:
    """What the unit page shows: the positive and the negative picture, and `diverse` diverse ones.
    `progress` counts the steps of all three runs."""
    total = steps * 3
    runs = [("positive", dict(n=1)), ("negative", dict(n=1, negative=True)),
            ("diverse", dict(n=diverse, diversity=1.0))]
    out: dict[str, Image.Image] = {}
    for i, (name, extra) in enumerate(runs):
        stopped = []

        def part(done, _total, *rest, **info):
            going = report(progress, i * steps + done, total, *rest, **info)
            if not going:
                stopped.append(True)
            return going

        images = feature_visualization(model, layer, channel, steps=steps, size=size, seed=seed, preset=preset,
                                       progress=part, **extra)
        for j, image in enumerate(images):
            out[name if len(images) == 1 else f"{name} {j + 1}"] = image
        if stopped:
            break
    return out
