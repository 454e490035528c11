"""Which pixels made the network decide: a registry of methods (`registry`), grouped as gradients
(`gradients`), class activation maps (`cams`) and perturbation (`perturbation`, with its
incremental executor), on what they share (`common`); whether to trust their maps (`trust`)."""
from vislib.attribution.cams import gradcam, gradcam_layer, guided_gradcam
from vislib.attribution.common import colour_scale, explaining, prepare
from vislib.attribution.gradients import (BASELINES, baseline_image, guided_backprop, integrated_gradients, saliency,
                                          smoothgrad)
from vislib.attribution.perturbation import occlusion, occlusion_curve, occlusion_fill, occlusion_preview
from vislib.attribution.registry import GROUPS, METHODS, Method, Param, attribute, get_method, grouped

__all__ = ["BASELINES", "GROUPS", "METHODS", "Method", "Param", "attribute", "baseline_image", "colour_scale",
           "explaining", "get_method", "gradcam", "gradcam_layer", "grouped", "guided_backprop", "guided_gradcam",
           "integrated_gradients", "occlusion", "occlusion_curve", "occlusion_fill", "occlusion_preview", "prepare",
           "saliency", "smoothgrad"]
