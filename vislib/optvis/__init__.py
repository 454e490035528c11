"""The one image-optimisation engine, in Lucid's shape: objectives, parameterisations, transforms, render."""
from vislib.optvis.optimize import *  # noqa: F401,F403
