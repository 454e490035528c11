"""The model zoo: a registry of network families and the Model every function works with.

Importing the family modules registers them; the picker lists them in the order imported here.
"""
from vislib.models.checkpoints import ModelError
from vislib.models.layers import LayerError, LayerInfo
from vislib.models.model import Model, Preprocessing, fingerprint, penultimate
from vislib.models.registry import (DEFAULT_MODEL, Availability, Family, WeightSource, architectures, availability,
                                    family, list_models, load_model, register)
from vislib.models.wrapped import wrap

# isort: off
from vislib.models.efficientnet_lite import imagenet_labels, map_lite_weights
from vislib.models import torchvision_zoo  # noqa: F401  (registers the torchvision families)
from vislib.models.fashion import NAME as FASHION_MODEL
from vislib.models import generated  # noqa: F401  (adds torchvision's and timm's registries, after the zoo)
# isort: on

__all__ = ["DEFAULT_MODEL", "FASHION_MODEL", "Availability", "Family", "LayerError", "LayerInfo", "Model", "ModelError",
           "Preprocessing", "WeightSource", "architectures", "availability", "family", "fingerprint",
           "imagenet_labels", "list_models", "load_model", "map_lite_weights", "penultimate", "register", "wrap"]
