"""Building an atlas: one pass over the collection for every chosen layer, then each channel's
feature visualisation, written as it goes; a build stopped at any point resumes where it stopped
and ends with the same files as an uninterrupted one (same chunks, same batches, same seeds)."""
from __future__ import annotations

import functools
import os
from pathlib import Path

from vislib.atlas import collect, store
from vislib.data.batches import chunks
from vislib.data.collections import Collection, open_collection
from vislib.models import Model, fingerprint
from vislib.runtime import Progress, batch_size as choose_batch, report

CHUNK_BATCHES = 8  # a chunk (the unit of saving and of work for a Ray worker) is this many batches
FV_GROUP = 16      # channels optimised together as one batch


def settings(model: Model, k: int, visualize: bool, steps: int, size: int | None, batch_size: int | None,
             seed: int) -> dict:
    batch = batch_size or choose_batch(model.device, cpu=16, gpu=64)
    return {"k": k, "batch_size": batch, "chunk": batch * CHUNK_BATCHES, "visualize": visualize, "steps": steps,
            "size": size, "seed": seed, "fv_group": FV_GROUP}


def _manifest(model: Model, layers: list[str], collection: Collection, chosen: dict, source: str | None) -> dict:
    return {"format": store.FORMAT, "version": store.VERSION,
            "model": {"name": model.name, "arch": model.arch, "fingerprint": fingerprint(model),
                      "input_size": model.input_size},
            "collection": {"key": collection.key, "name": collection.name, "size": len(collection),
                           "classes": collection.classes, "source": source},
            "layers": [{"name": n, "channels": model.layer(n).channels, "size": list(model.layer(n).size),
                        "receptive_field": model.layer(n).receptive_field} for n in layers],
            "settings": chosen, "done": 0, "pass_complete": False, "complete": False}


def _start(folder: Path, fresh: dict) -> dict:
    """The manifest to continue from: a new one, or the folder's own if it is the same build."""
    if not (folder / "manifest.json").exists():
        store.write_json(folder / "manifest.json", fresh)
        return fresh
    old = store.read_manifest(folder)
    for part, what in (("model", "network"), ("collection", "collection"), ("layers", "layers"),
                       ("settings", "settings")):
        mine, theirs = dict(old[part]) if part == "collection" else old[part], fresh[part]
        if part == "collection":  # the same pictures, whether named by their source or not
            mine, theirs = {**mine, "source": None}, {**theirs, "source": None}
        if mine != theirs:
            raise store.AtlasError(f"{folder} holds an atlas of another {what}; choose an empty folder, or the "
                                   f"same {what} to resume it.")
    return old


def build(model: Model, layers: list[str], collection: Collection, out_dir, *, k: int = 9, visualize: bool = True,
          steps: int = 256, size: int | None = None, engine: str = "local", progress: Progress | None = None,
          batch_size: int | None = None, seed: int = 0):
    """Build (or resume) the atlas of `layers` over `collection` in `out_dir`; returns the Atlas.

    `collection` is a Collection or what open_collection takes (a folder, a zip's path, "samples",
    "fashion-mnist"); given so, the atlas remembers it and can show its pictures later.
    `progress(done, total)` counts pictures of the pass and then channels visualised; returning
    False stops the build, which a later call with the same arguments resumes."""
    from vislib.atlas.reader import Atlas

    source = None
    if isinstance(collection, (str, os.PathLike)):
        source = str(collection) if str(collection) in ("samples", "fashion-mnist") else str(Path(collection).resolve())
        collection = open_collection(source)
    if engine not in ("local", "ray"):
        raise ValueError(f"Unknown engine {engine!r}; choose local or ray.")
    if not layers:
        raise ValueError("Choose at least one layer for the atlas.")
    for name in layers:
        model.layer(name)  # LayerError names the layers there are
    folder = Path(out_dir)
    chosen = settings(model, k, visualize, steps, size, batch_size, seed)
    manifest = _start(folder, _manifest(model, layers, collection, chosen, source))
    n = len(collection)
    channels = sum(model.layer(name).channels for name in layers) if visualize else 0
    total = n + 2 * channels
    if not manifest["pass_complete"]:
        if not _collection_pass(model, layers, collection, folder, manifest, engine, progress, total):
            return Atlas(folder)
    if visualize and not _store_examples(model, layers, collection, folder, progress, n, total):
        return Atlas(folder)
    if visualize and not _visualize_all(model, layers, folder, chosen, engine, progress, n + channels, total):
        return Atlas(folder)
    manifest["complete"] = True
    store.write_json(folder / "manifest.json", manifest)
    return Atlas(folder)


def _collection_pass(model, layers, collection, folder, manifest, engine, progress, total) -> bool:
    """Run (or finish) the pass; False when stopped."""
    chosen, n = manifest["settings"], len(collection)
    empty = collect.empty(model, layers, collection, chosen["k"])
    summaries = store.load_pass(folder, empty) if manifest["done"] else empty
    bounds = chunks(n, chosen["batch_size"], CHUNK_BATCHES, first=manifest["done"])
    work = functools.partial(collect.run_chunk, layers=layers, k=chosen["k"], batch_size=chosen["batch_size"])
    if engine == "ray":
        from vislib.runtime.ray_pool import map_chunks
        results = map_chunks(work, model, collection, bounds)
    else:
        results = (work(model, collection, a, b) for a, b in bounds)
    for result in results:  # in chunk order, whichever engine made them
        summaries = {name: summaries[name].merge(result.summaries[name]) for name in layers}
        for name in layers:
            store.save_maxima(folder, name, result.start, result.maxima[name])
        store.save_pass(folder, summaries)
        manifest["done"] = result.stop
        store.write_json(folder / "manifest.json", manifest)
        if not report(progress, result.stop, total):
            return False
    for name in layers:
        store.save_layer(folder, name, summaries[name])
    manifest["pass_complete"] = True
    store.write_json(folder / "manifest.json", manifest)
    return True


def _store_examples(model, layers, collection, folder, progress, done, total) -> bool:
    """Each channel's examples with their guided views, as pictures; False when stopped."""
    from vislib.atlas.reader import Atlas
    from vislib.units.guided import from_atlas

    found = Atlas(folder)
    for name in layers:
        for c in range(model.layer(name).channels):
            done += 1
            if store.examples_done(folder, name, c):
                continue
            made = from_atlas(model, found, name, c, collection)
            store.save_examples(folder, name, c, [(e.image, e.guided) for e in made])
            if not report(progress, done, total):
                return False
    return True


def _visualize_all(model, layers, folder, chosen, engine, progress, done, total) -> bool:
    """Each channel's feature visualisation, FV_GROUP channels at a time (with engine "ray", each
    group a Ray task, as many at once as there are GPUs); False when stopped."""
    from vislib.units.visualize import feature_visualizations

    groups = []
    for name in layers:
        count = model.layer(name).channels
        for first in range(0, count, chosen["fv_group"]):
            group = list(range(first, min(first + chosen["fv_group"], count)))
            if all(store.fv_path(folder, name, c).exists() for c in group):
                done += len(group)  # made before a stop
            else:
                groups.append((name, group))
    options = {"steps": chosen["steps"], "size": chosen["size"], "seed": chosen["seed"]}
    if engine == "ray":
        from vislib.runtime.ray_pool import map_tasks
        made = map_tasks(feature_visualizations, model, [((name, group), options) for name, group in groups])
    else:
        made = ((i, feature_visualizations(model, name, group, **options)) for i, (name, group) in enumerate(groups))
    for index, images in made:  # in the order they finish
        name, group = groups[index]
        for c, image in zip(group, images):
            store.save_fv(folder, name, c, image)
        done += len(group)
        if not report(progress, done, total):
            made.close()  # Ray: the groups still running are cancelled
            return False
    return True
