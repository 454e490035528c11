"""Where work runs: devices, the fair queue every shared network runs through, progress and stop."""
from vislib.runtime.device import *  # noqa: F401,F403
from vislib.runtime.device import _trimmer  # noqa: F401
