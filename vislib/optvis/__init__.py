"""The one image-optimisation engine, in Lucid's shape: every picture made by optimisation is an
objective handed to `render`.

- `objectives`: what is maximised (`class_logit(281) - 1e-4 * l2()`, `parse("blocks.3.0:12")`);
- `params`: what the optimiser changes and how the image is made (`pixels`, `fourier`);
- `transforms`: random views before each pass (`jitter`, `standard_transforms`) and Yosinski's
  image operations between steps (`decay`, `blur`, clipping);
- `optimizers`: Adam, DeepDream's normalised ascent, a GPU-friendly L-BFGS;
- `render`: the loop on a shared network, and its schedules (octaves, scales, restarts).

`vislib.optimize`, the engine's old name, is this package.
"""
from vislib.optvis.objectives import (IMAGE, LOGITS, Acts, Objective, channel, class_log_softmax, class_logit,
                                      feature_match, gram, gram_match, l2, layer_activation, neuron, objective,
                                      parse, total_variation)
from vislib.optvis.optimizers import LBFGS, OPTIMIZERS, NormalizedAscent
from vislib.optvis.params import Param, fourier, pixels
from vislib.optvis.render import (JUMP, Stages, channels, check, from_pil, render, render_octaves, render_restarting,
                                  render_scales, row, to_pil)
from vislib.optvis.transforms import (ImageOp, Transform, affine, blur, clip_small_contribution, clip_small_norm,
                                      decay, jitter, random_affine, standard_transforms)
from vislib.runtime import within as sub_progress  # the old name of a part's progress


def normalise(model, image):
    """0-1 RGB -> the network's input scale (the old name of `model.preprocessing.normalise`)."""
    return model.preprocessing.normalise(image)


__all__ = ["IMAGE", "JUMP", "LBFGS", "LOGITS", "OPTIMIZERS", "Acts", "ImageOp", "NormalizedAscent", "Objective",
           "Param", "Stages", "Transform", "affine", "blur", "channel", "channels", "check", "class_log_softmax",
           "class_logit", "clip_small_contribution", "clip_small_norm", "decay", "feature_match", "fourier",
           "from_pil", "gram", "gram_match", "jitter", "l2", "layer_activation", "neuron", "normalise", "objective",
           "parse", "pixels", "random_affine", "render", "render_octaves", "render_restarting", "render_scales",
           "row", "standard_transforms", "sub_progress", "to_pil", "total_variation"]
