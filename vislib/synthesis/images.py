"""Class images, fooling images, DeepDream and feature inversion: each an objective for optimize.render.

Every function takes `steps` (or its own step counts), `seed` and `progress=None`;
`progress(step, total, preview, loss=...)` gets a PIL preview every few steps, and returning
False stops the run early with the image made so far.
"""
from __future__ import annotations

import io

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from vislib.optvis import optimize as O
from vislib.activations import capture
from vislib.runtime import falls_back
from vislib.images import load_image
from vislib.models.zoo import Model

# Class-image presets. Yosinski et al. 2015's four regulariser combinations are their paper's
# columns (L2 decay, blur width, blur every, norm-clipping percentile, contribution percentile);
# steps use Adam on 0-1 pixels instead of their Caffe-scale SGD, so `lr` is ours.
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


def _as_pil(image: torch.Tensor) -> Image.Image:
    return O.to_pil(image)


def _to_tensor(picture: Image.Image, device) -> torch.Tensor:
    return TF.to_dtype(TF.pil_to_tensor(picture.convert("RGB")), torch.float32, scale=True)[None].to(device)


def probabilities(model: Model, image: torch.Tensor) -> torch.Tensor:
    """Class probabilities [K] of a [1,3,H,W] 0-1 image fed to the network as it is (no resizing)."""
    return model.probabilities(O.normalise(model, image.to(model.device)))[0]


# ---------------------------------------------------------------- class images

@falls_back
def class_visualization(model: Model, target: int, steps: int = 200, seed: int = 0, preset: str = DEFAULT_PRESET,
                        size: int | None = None, progress=None, **regularisers) -> Image.Image:
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
    if not 0 <= target < len(model.labels):
        raise ValueError(f"Class {target} does not exist; {model.name} has classes 0 to {len(model.labels) - 1}.")
    s = {**PRESETS[preset], **regularisers}
    size = size or model.input_size
    fourier = s.get("param") == "fourier"
    param = O.fourier(size, seed=seed, device=model.device) if fourier else O.pixels(size, seed=seed, device=model.device)
    objective = O.class_logit(target)
    if s.get("l2"):
        objective = objective - s["l2"] * O.l2()
    if s.get("tv"):
        objective = objective - s["tv"] * O.total_variation()
    ops = []
    if s.get("decay"):
        ops.append(O.decay(s["decay"]))
    if s.get("blur_sigma") and s.get("blur_every"):
        ops.append(O.blur(s["blur_sigma"], s["blur_every"]))
    if s.get("norm_percentile"):
        ops.append(O.clip_small_norm(s["norm_percentile"]))
    if s.get("contribution_percentile"):
        ops.append(O.clip_small_contribution(s["contribution_percentile"]))
    transforms = O.standard_transforms() if s.get("transforms") else []
    image = O.render(model, objective, param, transforms, optimizer=s.get("optimizer", "adam"), steps=steps,
                     lr=s.get("lr", 0.05), seed=seed, image_ops=ops, progress=progress)
    return _as_pil(image)


# ---------------------------------------------------------------- fooling images

def network_picture(model: Model, image: Image.Image) -> Image.Image:
    """The picture as a square of the network's resize size, whose centre is what the network sees.

    `model.preprocess` of this picture resizes nothing (it is already at the resize size) and
    crops exactly its centre, so a change made to the centre survives a download and re-upload.
    """
    p = model.preprocessing
    resized = TF.resize(image.convert("RGB"), p.resize_size, interpolation=TF.InterpolationMode(p.interpolation),
                        antialias=True)
    return TF.center_crop(resized, p.resize_size)


def _png_round_trip(picture: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return load_image(buffer.getvalue())


@falls_back
def fooling_image(model: Model, image: Image.Image, target: int, eps: float | None = None, max_steps: int = 100,
                  seed: int = 0, progress=None, lr: float | None = None, confidence: float = 0.5):
    """A picture that looks like `image` but that the network takes for class `target`.

    Targeted projected gradient ascent on the target's log-probability, within `eps` (0-1 pixel
    units, default 4/255) of the original in every pixel, in the exact space a person's download
    lives in: the 8-bit network picture (`network_picture`), optimised where the network looks.
    The run stops once the target has probability `confidence`, and the result is checked the
    way a person would: saved as PNG, read back and preprocessed; if it no longer fools, it goes
    on (up to `max_steps` in all). Returns (picture, info) with info: linf, original_class,
    target, original_before/after and target_before/after (probabilities), fooled, steps.
    """
    if not 0 <= target < len(model.labels):
        raise ValueError(f"Class {target} does not exist; {model.name} has classes 0 to {len(model.labels) - 1}.")
    eps = 4 / 255 if eps is None else float(eps)
    if not 0 < eps <= 1:
        raise ValueError("eps is a pixel change between 0 and 1 (4/255 is about 0.016).")
    picture = network_picture(model, image)
    full = _to_tensor(picture, model.device)
    r, s = model.preprocessing.resize_size, model.input_size
    top = left = int(round((r - s) / 2.0))  # torchvision's centre-crop offset
    original = full[..., top:top + s, left:left + s]
    # Bounds on the 1/255 grid, so that rounding to 8 bits never leaves the eps box.
    low = ((original - eps) * 255 - 1e-4).ceil().clamp(0, 255) / 255
    high = ((original + eps) * 255 + 1e-4).floor().clamp(0, 255) / 255
    before = probabilities(model, original).cpu()
    source = int(before.argmax())
    param = O.pixels(init=original, low=low, high=high, quantise=True, device=model.device)

    wanted = {"p": confidence}

    def fools(acts):
        return bool(acts[O.LOGITS].float().softmax(1)[0, target] >= wanted["p"])

    used, result, stopped = 0, picture, False
    while used < max_steps:
        chunk, done = max_steps - used, {"n": 0}

        def tally(step, total, preview=None, **info):
            nonlocal stopped
            done["n"] = step
            answer = progress(used + step, max_steps, preview, **info) if progress else True
            stopped = stopped or answer is False
            return answer
        crop = O.render(model, O.class_log_softmax(target), param, steps=chunk, lr=lr or eps / 4,
                        seed=seed + used, progress=tally, until=fools)
        used += done["n"]
        pasted = full.clone()
        pasted[..., top:top + s, left:left + s] = crop
        result = _as_pil(pasted)
        after = model.probabilities(model.preprocess(_png_round_trip(result))[None])[0]
        if int(after.argmax()) == target or stopped or done["n"] == chunk:
            break
        # It fooled in the loop but not after the round trip (a near tie): ask for more certainty.
        wanted["p"] = (1 + wanted["p"]) / 2
    back = _to_tensor(_png_round_trip(result), "cpu")
    info = {"linf": float((back - full.cpu()).abs().max()), "original_class": source, "target": target,
            "original_before": float(before[source]), "target_before": float(before[target]),
            "original_after": float(after[source]), "target_after": float(after[target]),
            "fooled": int(after.argmax()) == target, "steps": used}
    return result, info


# ---------------------------------------------------------------- DeepDream

@falls_back
def deepdream(model: Model, image: Image.Image, layer: str, octaves: int = 4, steps_per_octave: int = 10,
              seed: int = 0, progress=None, octave_scale: float = 1.4, jitter: int = 32, step_size: float = 1.5 / 255,
              size: int | None = 512) -> Image.Image:
    """Amplify what `layer` sees in the picture, as in the original DeepDream notebook.

    `layer` is a layer name (the mean squared activation is maximised) or "layer:channel".
    Octaves from small to full size carry the detail up; each step rolls the image by up to
    `jitter` pixels and moves by the gradient over its mean absolute value times `step_size`
    (1.5 grey levels, the notebook's value). The picture is scaled down so that its longer
    side is at most `size` (None keeps it).
    """
    picture = image.convert("RGB")
    if size and max(picture.size) > size:
        picture = picture.copy()
        picture.thumbnail((size, size), Image.Resampling.BICUBIC)
    objective = O.parse(layer)
    result = O.render_octaves(model, objective, _to_tensor(picture, model.device), octaves=octaves,
                              octave_scale=octave_scale, steps_per_octave=steps_per_octave, progress=progress,
                              transforms=[O.jitter(jitter)], optimizer="normalized", lr=step_size, seed=seed)
    return _as_pil(result)


# ---------------------------------------------------------------- inversion

def _network_input(model: Model, image: Image.Image) -> torch.Tensor:
    """The picture as the network sees it (resized, cropped), [1,3,S,S] in 0-1."""
    x = model.preprocess(image)[None].to(model.device)
    mean = torch.tensor(model.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(model.std, device=x.device).view(1, -1, 1, 1)
    return x * std + mean


def features(model: Model, image: torch.Tensor, layer: str) -> torch.Tensor:
    """The layer's output [1,C,H,W] for a [1,3,S,S] 0-1 image."""
    _, seen = capture(model, O.normalise(model, image), [layer])
    return seen[layer].to(model.device)


def feature_error(model: Model, image: torch.Tensor, layer: str, target: torch.Tensor) -> float:
    """Squared distance of the image's features to `target` over the target's squared norm."""
    return float((features(model, image, layer) - target).pow(2).sum() / target.pow(2).sum())


@falls_back
def invert(model: Model, image: Image.Image, layer: str, steps: int = 200, seed: int = 0, progress=None,
           tv: float = 5e-4, lr: float = 0.05) -> Image.Image:
    """Reconstruct the picture from `layer`'s features alone (Mahendran and Vedaldi 2015).

    From noise, minimise the feature distance (over the target's norm) plus `tv` times the
    total variation, which asks for a natural-looking, piecewise smooth image.
    """
    target = features(model, _network_input(model, image), layer)
    objective = -O.feature_match(layer, target) - tv * O.total_variation()
    param = O.pixels(model.input_size, seed=seed, device=model.device)
    return _as_pil(O.render(model, objective, param, steps=steps, lr=lr, seed=seed, progress=progress))


@falls_back
def inversion_row(model: Model, image: Image.Image, layers: list[str] | None = None, steps: int = 200,
                  seed: int = 0, progress=None, **settings) -> list[tuple[str, Image.Image]]:
    """Reconstructions from shallow to deep layers (default: five spread over the catalogue)."""
    if layers is None:
        names = [info.name for info in model.layers()]
        layers = [names[round(i * (len(names) - 1) / 4)] for i in range(5)]
    row = []
    for i, layer in enumerate(layers):
        row.append((layer, invert(model, image, layer, steps=steps, seed=seed,
                                  progress=O.sub_progress(progress, i * steps, len(layers) * steps), **settings)))
    return row


def top_classes(model: Model, picture: Image.Image, k: int = 5) -> list[tuple[int, str, float]]:
    """The top-k classes of a picture fed to the network as it is (a class image is not resized)."""
    probs = probabilities(model, _to_tensor(picture, model.device)).cpu()
    values, indices = probs.topk(min(k, len(probs)))
    return [(int(i), model.labels[int(i)], float(p)) for p, i in zip(values, indices)]


def difference(original: Image.Image, changed: Image.Image) -> Image.Image:
    """The change between two pictures, grey where none, stretched so that the largest change is full scale."""
    delta = _to_tensor(changed, "cpu") - _to_tensor(original, "cpu")
    return _as_pil(0.5 + delta / (2 * delta.abs().max().clamp_min(1 / 255)))


# ---------------------------------------------------------------- texture and style (vislib.style holds the pieces)

from vislib.synthesis import style as S  # noqa: E402 - the texture-and-style section's own import


STYLE_WEIGHT = 10  # style against content, both losses relative to their targets' size
TV_WEIGHT = 0.5  # total variation per pixel, against the Gram loss of a texture grown from pixel noise


def _lr(optimizer: str, lr: float | None) -> float:
    return lr or (1.0 if optimizer == "lbfgs" else 0.02)


def _smoothness(hw: tuple[int, int], tv: float) -> O.Objective:
    """Total variation per pixel: the networks barely see pixel-level colour noise, so nothing
    else removes what the start had (Mahendran and Vedaldi 2015; Johnson et al. 2016)."""
    return O.total_variation() * (tv / (hw[0] * hw[1]))


@falls_back
def texture(model: Model, texture_image: Image.Image, size: int = 256, steps: int = 200, layers=None, seed: int = 0,
            progress=None, smoothing: bool | None = None, optimizer: str = "lbfgs", param: str = "fourier",
            lr: float | None = None, tv: float | None = None) -> Image.Image:
    """Gatys et al. 2015: an image changed until its Gram matrices match the sample's.

    `param` "fourier" (default): Lucid's decorrelated Fourier image, whose 1/frequency spectrum
    moves large structures as fast as small ones and whose decorrelated colours keep out the
    colour noise the networks hardly see; "pixels": Gatys' uniform noise, pixel by pixel.
    `layers` default to `style.style_layers(model)`. With `smoothing` (Wang et al. 2021; default
    on except on VGG) the smoothed Grams AND the plain ones are matched: the softmax stresses the
    strongest activations, the plain Grams keep the rest (brick on lite0 judged by lite2:
    smoothed alone 3.4-3.6x closer than noise, plain alone 4.0-4.3x, both 4.6-4.9x).
    `tv` weighs total variation (default TV_WEIGHT for pixels, 0 for Fourier, whose spectrum
    already damps pixel noise). One scale: coarse-to-fine (`style.render_scales`) gave no
    better pixel textures at 128 px. L-BFGS for quality (`style.render_restarting` undoes its
    rare blow-ups), Adam for smoother previews. bench/README.md has the figures.
    """
    if param not in ("fourier", "pixels"):
        raise ValueError(f"Unknown parameterisation {param!r}; choose fourier or pixels.")
    layers = layers or S.style_layers(model)
    smoothing = S.smoothing_default(model) if smoothing is None else smoothing
    tv = (TV_WEIGHT if param == "pixels" else 0.0) if tv is None else tv
    sample = S.fit(texture_image, size)
    terms = [S.Targets(model, sample, layers, on).style() for on in ([True, False] if smoothing else [False])]
    objective = -(sum(terms[1:], terms[0]) + _smoothness((size, size), tv))
    start = O.fourier(size, seed=seed, device=model.device) if param == "fourier" else \
        O.pixels(init=S.noise(size, seed), device=model.device)
    lr = lr or (0.05 if optimizer == "adam" and param == "fourier" else _lr(optimizer, None))  # Lucid's Adam rate
    return _as_pil(S.render_restarting(model, objective, start, steps, progress, optimizer=optimizer, lr=lr, seed=seed))


@falls_back
def style_transfer(model: Model, content: Image.Image, style: Image.Image, steps: int = 200, size: int = 256,
                   style_weight: float | None = None, content_layer: str | None = None, style_layers=None,
                   seed: int = 0, progress=None, smoothing: bool | None = None, optimizer: str = "lbfgs",
                   scales: int = 2, lr: float | None = None, tv: float = 0.0) -> Image.Image:
    """Gatys et al. 2016: the content photo (shorter side `size`) changed until its Gram matrices
    match the style picture's while its `content_layer` activations stay the photo's; started
    from the photo (no noise, so `tv` 0), at `scales` sizes. Defaults as in `texture`;
    `style_weight` STYLE_WEIGHT.
    """
    layers = style_layers or S.style_layers(model)
    content_layer = content_layer or S.content_layer(model)
    smoothing = S.smoothing_default(model) if smoothing is None else smoothing
    weight = STYLE_WEIGHT if style_weight is None else style_weight

    def objective(hw: tuple[int, int]) -> O.Objective:
        style_targets = S.Targets(model, S.fit(style, min(hw)), layers, smoothing)
        content_targets = S.Targets(model, S.fit(content, hw), [content_layer], smoothing)
        return -(weight * style_targets.style() + content_targets.content() + _smoothness(hw, tv))
    image = S.render_scales(model, objective, S.fit(content, size), scales, steps, progress, optimizer=optimizer,
                            lr=_lr(optimizer, lr), seed=seed)
    return _as_pil(image)


@falls_back
def texture_row(model: Model, texture_image: Image.Image, steps: int = 200, progress=None,
                **settings) -> list[tuple[list[str], Image.Image]]:
    """Textures matched with growing sets of layers (`style.deeper_layer_sets`), `steps` each:
    Gatys et al. 2015's figure, where deeper Grams keep larger structures."""
    sets = S.deeper_layer_sets(model)
    return [(layers, texture(model, texture_image, steps=steps, layers=layers, **settings,
                             progress=O.sub_progress(progress, i * steps, len(sets) * steps)))
            for i, layers in enumerate(sets)]


@falls_back
def smoothing_pair(model: Model, content: Image.Image, style: Image.Image, steps: int = 200, progress=None,
                   **settings) -> list[tuple[bool, Image.Image]]:
    """The same style transfer without and with activation smoothing, `steps` each."""
    return [(on, style_transfer(model, content, style, steps=steps, smoothing=on, **settings,
                                progress=O.sub_progress(progress, i * steps, 2 * steps)))
            for i, on in enumerate([False, True])]
