"""The engine's old flat module names, kept importable after the move into sub-packages.

`import vislib.features` and `from vislib.features import extract` keep working and give the
very module that now lives at `vislib.data.features` (one object, not a copy), so code written
against the contract in docs/API.md does not break. Imported lazily: naming an old module costs
nothing until it is used.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {  # old name under vislib -> where the module lives now
    "device": "vislib.runtime",
    "checkpoints": "vislib.models.checkpoints",
    "layers": "vislib.models.layers",
    "fashion": "vislib.models.fashion",
    "datasets": "vislib.data.collections",
    "predict": "vislib.data.predict",
    "features": "vislib.data.features",
    "patches": "vislib.data.patches",
    "embedding": "vislib.data.embedding",
    "tsne": "vislib.data.tsne",
    "occlusion": "vislib.attribution.perturbation",
    "incremental": "vislib.attribution.incremental",
    "optimize": "vislib.optvis",
    "style": "vislib.synthesis.style",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self):
        self._specs = {}  # the real module's name -> its own spec, while an alias of it is imported

    def find_spec(self, fullname, path=None, target=None):
        old = fullname.removeprefix("vislib.")
        if fullname.startswith("vislib.") and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name.removeprefix("vislib.")])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module):
        # The import system stamped the alias's spec on the real module: give it back its own.
        module.__spec__ = self._specs.pop(module.__name__, module.__spec__)


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
