"""The model zoo: a registry of network families and the Model every function works with."""
from vislib.models.checkpoints import ModelError
from vislib.models.layers import LayerError, LayerInfo
from vislib.models.zoo import (DEFAULT_MODEL, FASHION_MODEL, Availability, Family, Model, Preprocessing,
                               architectures, availability, family, imagenet_labels, list_models, load_model,
                               map_lite_weights)

__all__ = ["DEFAULT_MODEL", "FASHION_MODEL", "Availability", "Family", "LayerError", "LayerInfo", "Model", "ModelError",
           "Preprocessing", "architectures", "availability", "family", "imagenet_labels", "list_models",
           "load_model", "map_lite_weights"]
