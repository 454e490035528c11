"""Pictures made by optimisation, one module per technique, each an objective for `vislib.optvis`:
class images (`class_images`), fooling images (`fooling`), DeepDream (`dream`), feature inversion
(`inversion`), texture and style transfer (`texture_style`, built from the Gram and smoothing
pieces in `style`; sample pictures in `samples`).

Every function takes `steps` (or its own step counts), `seed` and `progress=None`, reported
through `vislib.runtime.report`: `progress(step, total, preview=None, **info)` gets a PIL preview
every few steps and the loss, and returning False stops the work early with the best picture so
far. Each checks its layer, channel or class before any work and says what is wrong in one sentence.
"""
from vislib.synthesis import samples, style
from vislib.synthesis.class_images import (DEFAULT_PRESET, PRESETS, REGULARISERS, class_visualization, probabilities,
                                           top_classes)
from vislib.synthesis.dream import deepdream
from vislib.synthesis.fooling import difference, fooling_image, network_picture
from vislib.synthesis.inversion import feature_error, features, invert, inversion_row, network_input
from vislib.synthesis.texture_style import (STYLE_WEIGHT, TV_WEIGHT, smoothing_pair, style_transfer, texture,
                                           texture_row)

__all__ = ["DEFAULT_PRESET", "PRESETS", "REGULARISERS", "STYLE_WEIGHT", "TV_WEIGHT", "class_visualization", "deepdream",
           "difference", "feature_error", "features", "fooling_image", "invert", "inversion_row", "network_input",
           "network_picture", "probabilities", "samples", "smoothing_pair", "style", "style_transfer", "texture",
           "texture_row", "top_classes"]
