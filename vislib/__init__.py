"""vislib: the engine of the CNN visualisation app (no Streamlit in here).

Sub-packages along the ideas: `runtime` (devices, the queue every shared network runs through,
progress and stop), `models` (the zoo), `data` (collections, features, patches, embeddings),
`attribution` (which pixels made the network decide, and whether to trust it), `optvis` (the one
image-optimisation engine), `synthesis` (class images, fooling, DeepDream, inversion, texture and
style), `cli` (`vislib COMMAND`). docs/API.md is the public contract.
"""
from vislib import _moved
from vislib.images import ImageError, load_image
from vislib.models import LayerInfo, Model, ModelError, architectures, list_models, load_model, wrap

_moved.install()

__all__ = ["ImageError", "LayerInfo", "Model", "ModelError", "architectures", "list_models", "load_model",
           "load_image", "wrap"]
