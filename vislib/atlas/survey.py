"""A survey: what a collection says about every unit of one layer, computed once and kept - a
one-layer atlas without feature visualisations in vislib's cache, resumable like any atlas."""
from __future__ import annotations

from vislib.atlas.build import build
from vislib.atlas.reader import Atlas
from vislib.atlas.store import AtlasError
from vislib.data.collections import Collection, cache_dir
from vislib.models import Model, fingerprint
from vislib.runtime import Progress


def _folder(model: Model, layer: str, collection: Collection, k: int):
    return cache_dir("atlas") / f"{model.name}-{layer}-k{k}-{fingerprint(model)}-{collection.key}".replace("/", "_")


def survey_if_done(model: Model, layer: str, collection: Collection, k: int = 9):
    """The finished survey, or None (without computing anything)."""
    model.layer(layer)
    try:
        found = Atlas(_folder(model, layer, collection, k))
    except AtlasError:
        return None
    return found if found.complete else None


def survey(model: Model, layer: str, collection: Collection, k: int = 9, progress: Progress | None = None):
    """The layer's atlas over the collection (examples, statistics, activations of every channel),
    built on first use in $VISLIB_CACHE/atlas and read from there afterwards. When `progress` stops
    it, the Atlas returned is incomplete and the next call resumes it."""
    return survey_if_done(model, layer, collection, k) or build(
        model, [layer], collection, _folder(model, layer, collection, k), k=k, visualize=False, progress=progress)
