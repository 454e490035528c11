"""An atlas on disk, in open formats, written as it is built so that a stopped build resumes.

    DIR/manifest.json             what was built from what: the network's fingerprint, the collection's
                                  key, the layers, the settings, how far the pass has come
    DIR/pass/LAYER.npz            the pass's running result (top k per channel and sums), replaced whole
                                  after each chunk: a build stopped at any moment resumes from the last one
    DIR/maxima/LAYER/START.npy    every picture's strongest activation per channel, one file per chunk
    DIR/layers/LAYER.json         when the pass is complete: per channel its examples and statistics
    DIR/examples/LAYER/CHANNEL/   each example's patch and guided view as PNGs (written when the
                                  pass is complete, `done` last), so a unit's page needs no picture
    DIR/fv/LAYER/CHANNEL.png      feature visualisations
Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from vislib.atlas.collect import LayerSummary
from vislib.data.patches import TopState

FORMAT, VERSION = "vislib-atlas", 1


class AtlasError(ValueError):
    """An atlas folder that cannot be used as asked; the message is one sentence."""


def _atomic(path: Path, write) -> None:
    """write(a binary file) under a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def write_json(path: Path, data) -> None:
    _atomic(path, lambda f: f.write((json.dumps(data, indent=1) + "\n").encode()))


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise AtlasError(f"{folder} holds no atlas (there is no manifest.json).")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise AtlasError(f"{path} is not a readable atlas manifest.") from err
    if manifest.get("format") != FORMAT:
        raise AtlasError(f"{path} is not the manifest of a vislib atlas.")
    return manifest


def save_pass(folder: Path, summaries: dict[str, LayerSummary]) -> None:
    for layer, s in summaries.items():
        st = s.state
        _atomic(Path(folder, "pass", f"{layer}.npz"), lambda f, s=s, st=st: np.savez(
            f, values=st.values, positions=st.positions, images_seen=st.images_seen,
            total=s.total, squares=s.squares, peak=s.peak, positive=s.positive))


def load_pass(folder: Path, empty: dict[str, LayerSummary]) -> dict[str, LayerSummary]:
    """The saved running result, shaped like `empty` (which says network, layer, k and map size)."""
    out = {}
    for layer, blank in empty.items():
        with np.load(Path(folder, "pass", f"{layer}.npz")) as z:
            st = blank.state
            state = TopState(st.model, st.layer, st.collection, st.k, st.map_size, z["values"], z["positions"],
                             int(z["images_seen"]), list(st.shards), per_picture=True)
            out[layer] = LayerSummary(state, z["total"], z["squares"], z["peak"], z["positive"])
    return out


def save_maxima(folder: Path, layer: str, start: int, maxima: np.ndarray) -> None:
    _atomic(Path(folder, "maxima", layer, f"{start:09d}.npy"), lambda f: np.save(f, maxima))


def load_maxima(folder: Path, layer: str, channel: int) -> np.ndarray:
    """Every picture's strongest activation of one channel, in collection order."""
    files = sorted(Path(folder, "maxima", layer).glob("*.npy"))
    return np.concatenate([np.load(f, mmap_mode="r")[:, channel] for f in files]) if files else np.zeros(0)


def layer_table(summary: LayerSummary) -> list[dict]:
    """Per channel: its examples [[picture, activation, row, col], ...] (highest first) and statistics."""
    st, stats = summary.state, summary.statistics()
    cells = st.map_size[0] * st.map_size[1]
    table = []
    for c in range(st.channels):
        examples = []
        for value, position in zip(st.values[c], st.positions[c]):
            if not np.isfinite(value):
                break
            index, cell = divmod(int(position), cells)
            examples.append([index, float(value), *divmod(cell, st.map_size[1])])
        table.append({"channel": c, "examples": examples, **{k: v[c] for k, v in stats.items()}})
    return table


def save_layer(folder: Path, layer: str, summary: LayerSummary) -> None:
    write_json(Path(folder, "layers", f"{layer}.json"), layer_table(summary))


def example_dir(folder: Path, layer: str, channel: int) -> Path:
    return Path(folder, "examples", layer, f"{channel:05d}")


def save_examples(folder: Path, layer: str, channel: int, pictures: list[tuple[Image.Image, Image.Image]]) -> None:
    """Each example's (patch, guided view), then a `done` mark: a folder without it is made again."""
    where = example_dir(folder, layer, channel)
    for rank, (patch, guided) in enumerate(pictures):
        _atomic(where / f"{rank:02d}-patch.png", lambda f, im=patch: im.save(f, format="PNG"))
        _atomic(where / f"{rank:02d}-guided.png", lambda f, im=guided: im.save(f, format="PNG"))
    _atomic(where / "done", lambda f: f.write(b"%d\n" % len(pictures)))


def examples_done(folder: Path, layer: str, channel: int) -> bool:
    return (example_dir(folder, layer, channel) / "done").exists()


def load_examples(folder: Path, layer: str, channel: int) -> list[tuple[Image.Image, Image.Image]] | None:
    where = example_dir(folder, layer, channel)
    if not examples_done(folder, layer, channel):
        return None
    count = int((where / "done").read_text())
    return [tuple(Image.open(where / f"{rank:02d}-{kind}.png").convert("RGB") for kind in ("patch", "guided"))
            for rank in range(count)]


def fv_path(folder: Path, layer: str, channel: int) -> Path:
    return Path(folder, "fv", layer, f"{channel:05d}.png")


def save_fv(folder: Path, layer: str, channel: int, image: Image.Image) -> None:
    _atomic(fv_path(folder, layer, channel), lambda f: image.save(f, format="PNG"))
