"""Reading an atlas: instant, since the build wrote every answer to a file of its own."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
from PIL import Image

from vislib.atlas import store


class Atlas:
    """An atlas folder (see vislib.atlas.store for its files)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest = store.read_manifest(self.folder)

    def __repr__(self) -> str:
        m = self.manifest
        return (f"Atlas({str(self.folder)!r}, {m['model']['name']}, {len(self.layers)} layers, "
                f"{m['collection']['size']} pictures, complete={m['complete']})")

    @property
    def layers(self) -> list[str]:
        return [entry["name"] for entry in self.manifest["layers"]]

    @property
    def complete(self) -> bool:
        return bool(self.manifest["complete"])

    def collection(self):
        """The collection the atlas was built over, opened again (None if it was given as an object,
        or if it is no longer where it was)."""
        from vislib.data.collections import CollectionError, open_collection

        source = self.manifest["collection"].get("source")
        if source is None:
            return None
        try:
            found = open_collection(source)
        except CollectionError:
            return None
        return found if found.key == self.manifest["collection"]["key"] else None

    def channels(self, layer: str) -> int:
        return self._entry(layer)["channels"]

    def _entry(self, layer: str) -> dict:
        for entry in self.manifest["layers"]:
            if entry["name"] == layer:
                return entry
        raise store.AtlasError(f"This atlas has no layer {layer!r}; it has {', '.join(self.layers)}.")

    @functools.lru_cache(maxsize=8)
    def _table(self, layer: str) -> list[dict]:
        self._entry(layer)
        path = self.folder / "layers" / f"{layer}.json"
        if not path.is_file():
            raise store.AtlasError(f"The pass over the collection has not finished for {layer}; build the atlas "
                                   "again to resume it.")
        return json.loads(path.read_text())

    def unit(self, layer: str, channel: int) -> dict:
        """Everything the atlas knows of one channel: examples and statistics."""
        table = self._table(layer)
        if not 0 <= channel < len(table):
            raise store.AtlasError(f"{layer} has channels 0 to {len(table) - 1}; there is no channel {channel}.")
        return table[channel]

    def examples(self, layer: str, channel: int) -> list[tuple[int, float]]:
        """(picture index, activation) of the channel's top pictures, one per picture, highest first."""
        return [(int(e[0]), float(e[1])) for e in self.unit(layer, channel)["examples"]]

    def cells(self, layer: str, channel: int) -> list[tuple[int, int]]:
        """The (row, col) of each example's strongest cell, in the order of `examples`."""
        return [(int(e[2]), int(e[3])) for e in self.unit(layer, channel)["examples"]]

    def activations(self, layer: str, channel: int) -> np.ndarray:
        """Every picture's strongest activation of the channel (for a histogram), collection order."""
        self.unit(layer, channel)
        return store.load_maxima(self.folder, layer, channel)

    def example_pictures(self, layer: str, channel: int) -> list[tuple[Image.Image, Image.Image]] | None:
        """Each example's (patch, guided view) as the build stored them, or None if it did not."""
        self.unit(layer, channel)
        return store.load_examples(self.folder, layer, channel)

    def feature_visualization(self, layer: str, channel: int) -> Image.Image | None:
        """The channel's feature visualisation, or None if the build has not made it (yet)."""
        self.unit(layer, channel)
        path = store.fv_path(self.folder, layer, channel)
        return Image.open(path).convert("RGB") if path.exists() else None


def open(folder) -> Atlas:  # noqa: A001 - the contract's name, vislib.atlas.open
    return Atlas(folder)
