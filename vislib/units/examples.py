"""A unit's dataset examples as the lecture shows them: its top pictures of a collection, one per
picture (each by its strongest cell), cut at that cell's receptive field, each with its guided view."""
from __future__ import annotations

from vislib.data.collections import Collection
from vislib.models import Model
from vislib.units.guided import Example, from_atlas


def examples(model: Model, layer: str, channel: int, collection: Collection, k: int = 9, guided: bool = True,
             progress=None) -> list[Example]:
    """The unit's top k pictures of the collection, one per picture, highest first, each a Patch
    (index, box, activation, image, cell) with `guided`: guided backprop at the cell, over the
    patch. The pass over the collection is the layer's survey, kept on disk (one pass serves every
    channel of the layer)."""
    from vislib.atlas.survey import survey  # the atlas builds on the units' modules: imported on use

    found_atlas = survey(model, layer, collection, k, progress=progress)
    if not found_atlas.complete:
        return []
    return from_atlas(model, found_atlas, layer, channel, collection, guided)
