"""Which pixels made the network decide: a registry of methods (`registry`), grouped as gradients
(`gradients`), class activation maps (`cams`, and pytorch-grad-cam's variants in `cam_family`),
perturbation (`perturbation`, with its incremental executor, and `rise`), relevance (`relevance`,
LRP through Zennit) and baselines (`baselines`), on what they share (`common`); a method's map as
the seed of a segmentation (`segment`); whether to trust their maps (`trust`)."""
from vislib.attribution.baselines import edges, random
from vislib.attribution.cam_family import (ablationcam, eigencam, gradcam_plus_plus, hirescam, layercam, scorecam,
                                           xgradcam)
from vislib.attribution.cams import gradcam, gradcam_layer, guided_gradcam
from vislib.attribution.common import colour_scale, explaining, prepare
from vislib.attribution.gradients import (BASELINES, baseline_image, guided_backprop, integrated_gradients, saliency,
                                          smoothgrad)
from vislib.attribution.perturbation import occlusion, occlusion_curve, occlusion_fill, occlusion_preview
from vislib.attribution.registry import GROUPS, METHODS, Method, Param, attribute, get_method, grouped
from vislib.attribution.relevance import lrp
from vislib.attribution.rise import rise
from vislib.attribution.segment import cut_out, segment

__all__ = ["BASELINES", "GROUPS", "METHODS", "Method", "Param", "ablationcam", "attribute", "baseline_image",
           "colour_scale", "cut_out", "edges", "eigencam", "explaining", "get_method", "gradcam", "gradcam_layer",
           "gradcam_plus_plus", "grouped", "guided_backprop", "guided_gradcam", "hirescam", "integrated_gradients",
           "layercam", "lrp", "occlusion", "occlusion_curve", "occlusion_fill", "occlusion_preview", "prepare",
           "random", "rise", "saliency", "scorecam", "segment", "smoothgrad", "xgradcam"]
