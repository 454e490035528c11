"""Fooling images: a picture changed invisibly until the network takes it for another class
(targeted projected gradient ascent), in the 8-bit space a person's download lives in."""
from __future__ import annotations

import io

from PIL import Image
from torchvision.transforms.v2 import functional as TF

from vislib import optvis as O
from vislib.images import load_image
from vislib.models import Model
from vislib.runtime import Progress, falls_back
from vislib.synthesis.class_images import probabilities


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
                  seed: int = 0, progress: Progress | None = None, lr: float | None = None, confidence: float = 0.5):
    """A picture that looks like `image` but that the network takes for class `target`.

    Targeted projected gradient ascent on the target's log-probability, within `eps` (0-1 pixel
    units, default 4/255) of the original in every pixel, in the exact space a person's download
    lives in: the 8-bit network picture (`network_picture`), optimised where the network looks.
    The run stops once the target has probability `confidence`, and the result is checked the
    way a person would: saved as PNG, read back and preprocessed; if it no longer fools, it goes
    on (up to `max_steps` in all). Returns (picture, info) with info: linf, original_class,
    target, original_before/after and target_before/after (probabilities), fooled, steps.
    """
    objective = O.class_log_softmax(target)
    O.check(model, objective)
    eps = 4 / 255 if eps is None else float(eps)
    if not 0 < eps <= 1:
        raise ValueError("eps is a pixel change between 0 and 1 (4/255 is about 0.016).")
    picture = network_picture(model, image)
    full = O.from_pil(picture, model.device)
    r, s = model.preprocessing.resize_size, model.input_size
    top = left = int(round((r - s) / 2.0))  # torchvision's centre-crop offset
    original = full[..., top:top + s, left:left + s]
    # Bounds on the 1/255 grid, so that rounding to 8 bits never leaves the eps box.
    low = ((original - eps) * 255 - 1e-4).ceil().clamp(0, 255) / 255
    high = ((original + eps) * 255 + 1e-4).floor().clamp(0, 255) / 255
    before = probabilities(model, original).cpu()
    source = int(before.argmax())
    param = O.pixels(init=original, low=low, high=high, quantise=True, device=model.device)
    wanted = confidence

    def fools(acts):
        return bool(acts[O.LOGITS].float().softmax(1)[0, target] >= wanted)

    stages, result = O.Stages(progress, max_steps), picture
    while stages.step < max_steps:
        start = stages.step
        crop = O.render(model, objective, param, steps=max_steps - start, lr=lr or eps / 4, seed=seed + start,
                        progress=stages.at(start), until=fools)
        pasted = full.clone()
        pasted[..., top:top + s, left:left + s] = crop
        result = O.to_pil(pasted)
        after = model.probabilities(model.preprocess(_png_round_trip(result))[None])[0]
        if int(after.argmax()) == target or stages.stopped or stages.step == max_steps:
            break
        # It fooled in the loop but not after the round trip (a near tie): ask for more certainty.
        wanted = (1 + wanted) / 2
    back = O.from_pil(_png_round_trip(result))
    info = {"linf": float((back - full.cpu()).abs().max()), "original_class": source, "target": target,
            "original_before": float(before[source]), "target_before": float(before[target]),
            "original_after": float(after[source]), "target_after": float(after[target]),
            "fooled": int(after.argmax()) == target, "steps": stages.step}
    return result, info


def difference(original: Image.Image, changed: Image.Image) -> Image.Image:
    """The change between two pictures, grey where none, stretched so that the largest change is full scale."""
    delta = O.from_pil(changed) - O.from_pil(original)
    return O.to_pil(0.5 + delta / (2 * delta.abs().max().clamp_min(1 / 255)))
