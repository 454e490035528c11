"""Which pixels made the network decide: a registry of methods, and whether to trust their maps."""
from vislib.attribution.methods import *  # noqa: F401,F403
from vislib.attribution.methods import (BASELINES, METHODS, Method, attribute, baseline_image, colour_scale,  # noqa: F401
                                        gradcam, gradcam_layer, guided_backprop, guided_gradcam,
                                        integrated_gradients, occlusion, occlusion_curve, occlusion_fill,
                                        occlusion_preview, saliency, smoothgrad)
