"""vislib: the engine of the CNN visualisation app (no Streamlit in here)."""
from .checkpoints import ModelError
from .images import ImageError, load_image
from .layers import LayerInfo
from .models import Model, list_models, load_model

__all__ = ["ImageError", "LayerInfo", "Model", "ModelError", "list_models", "load_image", "load_model"]
