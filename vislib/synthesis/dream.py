"""DeepDream: amplify whatever a layer sees in a picture (Mordvintsev et al. 2015)."""
from __future__ import annotations

from PIL import Image

from vislib import optvis as O
from vislib.models import Model
from vislib.runtime import Progress, falls_back


@falls_back
def deepdream(model: Model, image: Image.Image, layer: str, octaves: int = 4, steps_per_octave: int = 10,
              seed: int = 0, progress: Progress | None = None, octave_scale: float = 1.4, jitter: int = 32,
              step_size: float = 1.5 / 255, size: int | None = 512) -> Image.Image:
    """Amplify what `layer` sees in the picture, as in the original DeepDream notebook.

    `layer` is a layer name (the mean squared activation is maximised) or "layer:channel" (any
    text `optvis.parse` reads). Octaves from small to full size carry the detail up; each step
    rolls the image by up to `jitter` pixels and moves by the gradient over its mean absolute
    value times `step_size` (1.5 grey levels, the notebook's value). The picture is scaled down
    so that its longer side is at most `size` (None keeps it).
    """
    objective = O.parse(layer)  # render_octaves checks its layer and channel before any work
    picture = image.convert("RGB")
    if size and max(picture.size) > size:
        picture = picture.copy()
        picture.thumbnail((size, size), Image.Resampling.BICUBIC)
    result = O.render_octaves(model, objective, O.from_pil(picture, model.device), octaves=octaves,
                              octave_scale=octave_scale, steps_per_octave=steps_per_octave, progress=progress,
                              transforms=[O.jitter(jitter)], optimizer="normalized", lr=step_size, seed=seed)
    return O.to_pil(result)
