"""Pictures made by optimisation: class images, fooling images, DeepDream, inversion, texture and style."""
from vislib.synthesis.images import *  # noqa: F401,F403
