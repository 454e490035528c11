"""What the Nearest-neighbours and Feature-map pages share: a collection's features, pixels and maps, cached.

Features of a small collection are computed at once (a spinner); a large one gets a Run button
with progress and Stop (ui.jobs). vislib caches features on disk, so a second visit is a file
read; st.cache_data keeps them in memory, keyed by model_key + collection key (+ parameters).
"""
from __future__ import annotations

import numpy as np
import plotly.express as px
import streamlit as st
from PIL import Image, ImageColor

from ui import collection as collections, jobs
from vislib.data import embedding, features as fe

AT_ONCE = 300  # pictures whose features are computed without asking first


@st.cache_data(max_entries=16, show_spinner=False)
def _features(_model, model_key, _collection, collection_key, _progress=None):
    return fe.extract(_model, _collection, progress=_progress)


@st.cache_data(max_entries=16, show_spinner="Reading the pictures...")
def pixels(_collection, collection_key, size: int = 32):
    return fe.pixels(_collection, size)


@st.cache_data(max_entries=64, show_spinner=False)
def picture_features(_model, model_key, _picture, image_key):
    """The penultimate feature vector of one picture (the sidebar's), as `fe.extract` makes them."""
    x = _model.preprocess(_picture)[None]
    pooled = fe.layer_output(_model, x, None, lambda t: (t.mean((2, 3)) if t.dim() == 4 else t.flatten(1)).cpu())
    return pooled[0].numpy()


def picture_pixels(picture, size: int = 32) -> np.ndarray:
    """The picture in the same pixel space as `pixels`: a size x size centre square, in [0, 1]."""
    return np.asarray(fe.thumbnail(picture, size), dtype=np.float32).reshape(-1) / 255


@st.cache_data(max_entries=256, show_spinner=False)
def thumbnail(_collection, collection_key, index: int, size: int = 64):
    return fe.thumbnail(_collection[index][0], size)


def features(model, model_key, collection, collection_key):
    """The collection's penultimate features [N, C], or None while the person has not started them."""
    ready = f"features-ready:{model_key}:{collection_key}"
    if len(collection) <= AT_ONCE or st.session_state.get(ready):
        with st.spinner(f"Running the network over {len(collection):,} pictures..."):
            out = _features(model, model_key, collection, collection_key)
        st.session_state[ready] = True
        return out
    st.write(f"The network looks at all {len(collection):,} pictures once; the result is kept for later visits.")
    kept = jobs.run(f"features:{model_key}:{collection_key}",
                    lambda progress: _features(model, model_key, collection, collection_key, _progress=progress),
                    label="Compute the features")
    if not kept or kept["result"] is None:
        return None
    st.session_state[ready] = True
    return kept["result"]


def collection_features(model, model_key, key: str, minimum: int, why: str):
    """The page's collection picker, then its features: (collection, collection_key, features).

    Stops the page (after one sentence) when no collection is chosen yet, when it holds fewer
    than `minimum` pictures (`why` says what they are needed for), or while features are pending.
    """
    chosen = collections.pick_collection(key)
    if chosen is None:
        st.stop()
    collection, collection_key = chosen
    if len(collection) < minimum:
        st.error(f"This collection holds fewer than {minimum} pictures; {why}.")
        st.stop()
    found = features(model, model_key, collection, collection_key)
    if found is None:
        st.stop()
    return collection, collection_key, found


@st.cache_data(max_entries=16, show_spinner="Computing the PCA map...")
def pca(_features, model_key, collection_key):
    return embedding.pca(_features)


@st.cache_data(max_entries=16, show_spinner=False)
def tsne(_features, model_key, collection_key, perplexity: float, seed: int, _progress=None):
    return embedding.tsne(_features, seed=seed, perplexity=perplexity, progress=_progress)


@st.cache_data(max_entries=16, show_spinner="Snapping the map to a grid...")
def grid_layout(_points, model_key, collection_key, params: tuple, rows: int, cols: int):
    return embedding.grid_layout(_points, rows, cols)


def label_colours(collection) -> np.ndarray:
    """An RGB colour [N, 3] per picture, by label (plotly's default palette), grey without labels."""
    palette = np.array([ImageColor.getrgb(c) for c in px.colors.qualitative.Plotly], np.uint8)
    labels = collection.labels
    return np.array([palette[lab % len(palette)] if lab is not None else (110, 110, 110) for lab in labels], np.uint8)


def preview(points: np.ndarray, colours: np.ndarray, size: int = 240) -> Image.Image:
    """A quick picture of a map in the making (for the live preview of the t-SNE job)."""
    p = points - points.min(0)
    p = (p / max(float(p.max()), 1e-12) * (size - 3) + 1).astype(int)
    canvas = np.full((size, size, 3), 255, np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            canvas[size - 1 - p[:, 1] - dy, p[:, 0] + dx] = colours
    return Image.fromarray(canvas)
