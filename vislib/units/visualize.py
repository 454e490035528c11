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


def _grams(t: torch.Tensor) -> torch.Tensor:
    """Each picture's Gram matrix of a batch's activations [N,C,H,W], flattened to unit length [N, C*C]."""
    n, c = t.shape[:2]
    flat = t.float().reshape(n, c, -1)
    return F.normalize((flat @ flat.transpose(1, 2)).reshape(n, -1), dim=1)


def _gram_similarity(t: torch.Tensor) -> torch.Tensor:
    """The mean cosine similarity between the Gram matrices of a batch's activations [N,C,H,W]
    (Olah et al. 2017's diversity term, before its sign)."""
    n, grams = len(t), _grams(t)
    similarity = grams @ grams.T
    return (similarity.sum() - similarity.diagonal().sum()) / max(n * (n - 1), 1)


def _gram_similarity_each(t: torch.Tensor) -> torch.Tensor:
    """Each picture's similarity to the others [N], its gradient reaching that picture only. With
    equal weights their sum pushes every picture exactly as _gram_similarity does (whose gradient
    reaches both pictures of each pair); unequal weights push one picture less than the others."""
    n, grams = len(t), _grams(t)
    similarity = grams @ grams.detach().T
    others = similarity.sum(1) - similarity.diagonal()
    return 2 * others / max(n * (n - 1), 1)


@objective
def gram_diversity(layer: str):
    """Minus the mean cosine similarity between the images' Gram matrices at `layer` (Olah et al.
    2017): maximising it pushes a batch of images for one unit towards different styles."""
    return (lambda a: -_gram_similarity(a[layer])), (layer,)


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


def _each(layer: str, index: int, kind: str):
    """The unit's value in each image of the batch, [N] (what `_unit` averages)."""
    def fn(acts):
        t = acts[layer][:, index]
        return t.mean((1, 2)) if kind == "channel" else t[:, t.shape[1] // 2, t.shape[2] // 2]
    return fn


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
    are pushed apart (1.0 is the recommended strength), each keeping about KEEP of what a plain
    visualisation of the unit reaches."""
    return _diverse(model, layer, channel, n=n, size=size, steps=steps, seed=seed, diversity=diversity,
                    negative=negative, objective=objective, preset=preset, progress=progress)[1:]


def _diverse(model: Model, layer: str, channel: int, *, n: int, size: int | None, steps: int, seed: int,
             diversity: float, negative: bool, objective: str, preset: str,
             progress: Progress | None) -> list[Image.Image]:
    """[the plain picture, n pictures]: with diversity, the plain one is optimised in the same batch
    and steers the diversity weight (see _with_diversity); without, it is not made (None)."""
    sign = -1.0 if negative else 1.0
    goal = sign * _unit(layer, channel, objective, None)
    seeds = [seed * 100_003 + channel + 7919 * i for i in range(n + 1)]  # 0: the plain picture's, as with n=1
    if diversity > 0 and n > 1:
        each = _each(layer, channel, objective)
        goal = _with_diversity(goal, layer, lambda acts: sign * each(acts), diversity * DIVERSITY_SCALE)
        return _render(model, goal, seeds, steps=steps, size=size, seed=seed, preset=preset, progress=progress)
    return [None] + _render(model, goal, seeds[:n], steps=steps, size=size, seed=seed, preset=preset,
                            progress=progress)


# How strongly the pictures are pushed apart cannot be one number: the Gram penalty is a cosine
# similarity (no unit), and how much of the unit's activation a given push costs differs tenfold
# between layers (on lite0 a weight that makes blocks.2.1's pictures different costs blocks.5.2's
# a third of their activation; bench/units.py) and between pictures of one batch. So each picture's
# weight is steered while the pictures grow: image 0 of the batch is a plain visualisation of the
# unit under the same random views, and each step a picture's weight grows while it keeps KEEP of
# image 0's activation and shrinks while it falls below, between FLOOR and 64 times the starting
# weight - a multiplicative controller per picture, deterministic for a seed. One weight for all
# (session 6) had to stop pushing every picture when one fell behind, and still let that one go
# (blocks.5.2 channel 11: 81% kept at 256 steps; per picture: 89%).
DIVERSITY_SCALE = 0.15  # the starting weight, relative to the size of the unit's activation
KEEP = 0.9              # of the plain picture's activation, under the same views (the goal is 0.8: a margin)
FLOOR = 0.25            # the least weight, as a share of the starting one
_GROW, _SHRINK = 1.08, 0.75


def _with_diversity(goal: Objective, layer: str, each, weight: float) -> Objective:
    state: dict[str, torch.Tensor] = {}

    def fn(acts):
        value = goal(acts)
        reached = each(acts).detach()
        pushed = acts[layer][1:]  # the diverse pictures (image 0 is the plain one)
        weights = state.get("weights")
        if weights is None:
            weights = torch.full((len(pushed),), weight, device=pushed.device)
        elif len(reached) > 2:  # the plain picture and at least two diverse ones
            kept = reached[1:] >= KEEP * reached[0]
            weights = (weights * torch.where(kept, _GROW, _SHRINK)).clamp(weight * FLOOR, weight * 64)
        state["weights"] = weights
        return value - value.detach().abs() * (weights * _gram_similarity_each(pushed)).sum()
    return Objective(fn, f"{goal.name} + steered diversity", goal.layers + (layer,), goal.reads)


def feature_visualization_set(model: Model, layer: str, channel: int, *, steps: int = 256, size: int | None = None,
                              seed: int = 0, preset: str = DEFAULT_PRESET, diverse: int = 4,
                              progress: Progress | None = None) -> dict[str, Image.Image]:
    """What the unit page shows: the positive and the negative picture, and `diverse` diverse ones.
    The positive picture is the plain one that steers the diverse ones, made in their batch: two
    runs, and `progress` counts the steps of both."""
    common = dict(steps=steps, size=size, seed=seed, preset=preset, objective="channel")
    runs = [("diverse", dict(n=diverse, diversity=1.0, negative=False)), ("negative", dict(n=1, diversity=0.0,
                                                                                            negative=True))]
    out: dict[str, Image.Image] = {}
    for i, (name, extra) in enumerate(runs):
        stopped = []

        def part(done, _total, *rest, **info):
            going = report(progress, i * steps + done, 2 * steps, *rest, **info)
            if not going:
                stopped.append(True)
            return going

        plain, *images = _diverse(model, layer, channel, progress=part, **common, **extra)
        if plain is not None:
            out["positive"] = plain
        for j, image in enumerate(images):
            out[name if len(images) == 1 else f"{name} {j + 1}"] = image
        if stopped:
            break
    return {key: out[key] for key in ["positive", "negative", *(k for k in out if k.startswith("diverse"))]
            if key in out}
