"""The unit page's long work, each with progress and Stop, and kept so that a rerun is instant."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from ui import jobs, widgets
from vislib import render, units

AT_ONCE = 64  # a collection this small is surveyed without asking (a few seconds on a CPU)


def survey(model, model_key: str, layer: str, collection, collection_key: str):
    """The layer's survey of the collection (an atlas in vislib's cache); None until it is made."""
    found = units.survey_if_done(model, layer, collection)
    if found is not None:
        return found
    if len(collection) <= AT_ONCE:
        with st.spinner(f"Running the network over {len(collection):,} pictures..."):
            return units.survey(model, layer, collection)
    st.write(f"One pass over the {len(collection):,} pictures finds the top pictures of all channels of {layer} "
             "at once; it is kept for later visits (and resumes if stopped).")
    kept = jobs.run(f"survey:{model_key}:{layer}:{collection_key}",
                    lambda progress: units.survey(model, layer, collection, progress=progress),
                    label="Survey the collection")
    result = kept["result"] if kept else None
    return result if result is not None and result.complete else None


@st.cache_data(max_entries=32, show_spinner="Guided backprop of each example...")
def examples(_model, model_key, layer, channel, _collection, collection_key, _survey):
    """The unit's examples with their guided views (read from the atlas when it stored them)."""
    return units.from_atlas(_model, _survey, layer, channel, _collection)


def feature_visualizations(model, model_key: str, layer: str, channel: int) -> None:
    """Positive, negative and four diverse feature visualisations, made on request."""
    preset = st.radio("Preset", list(units.PRESETS), horizontal=True, key="unit-fv-preset",
                      help="Lucid: a decorrelated Fourier image under small jitter, scaling and rotation (Olah et al. "
                           "2017). Yosinski 2015: plain pixels with decay, blur and clipping, as in the lecture.")
    steps = st.select_slider("Steps", [32, 64, 128, 256, 512], 64 if model.device.type == "cpu" else 256,
                             key="unit-fv-steps")

    def job(progress):
        return units.feature_visualization_set(model, layer, channel, steps=steps, preset=preset, progress=progress)

    kept = jobs.run(f"fv:{model_key}:{layer}:{channel}:{preset}:{steps}", job, label="Visualise this unit")
    if not kept or not kept["result"]:
        return
    shown = kept["result"]
    captions = list(shown)
    pictures = [shown[c] for c in captions]
    st.image(pictures, width=150, caption=captions)
    widgets.download_png(render.grid(pictures, cols=len(pictures)), f"{layer}-ch{channel}-visualisations.png",
                         "Download the visualisations")


def class_effects(model, model_key: str, layer: str, channel: int, collection, collection_key: str) -> None:
    """The classes whose scores drop most when the unit is silenced, averaged over the collection."""
    kept = jobs.run(f"effects:{model_key}:{layer}:{channel}:{collection_key}",
                    lambda progress: units.class_effects(model, layer, channel, collection, progress=progress),
                    label="Silence this unit")
    if not kept or kept["result"] is None:
        st.caption("Sets the unit's map to zero and measures how each class's score changes, averaged over the "
                   "collection's pictures.")
        return
    effects = kept["result"]
    order = effects.argsort()[::-1][:10]
    fig = go.Figure(go.Bar(x=[float(effects[i]) for i in order][::-1],
                           y=[f"{model.labels[i]} ({i})" for i in order][::-1], orientation="h",
                           marker_color="#e45756"))
    fig.update_layout(height=320, margin=dict(l=0, r=0, t=30, b=0), xaxis_title="score drop when silenced",
                      title="Classes it pushes up most")
    st.plotly_chart(fig, key=f"unit-effects-{layer}-{channel}")


def built_atlas_folder(model, layers: list[str], collection_key: str, k: int, steps: int):
    """Where an atlas built in the app is kept (vislib's cache; the same choices find it again)."""
    from vislib.data.collections import cache_dir
    from vislib.models import fingerprint
    name = f"{model.name}-{fingerprint(model)}-{'+'.join(layers)}-{collection_key}-k{k}-s{steps}"
    return cache_dir("atlases") / name.replace("/", "_")


_COLLECTIONS: dict[str, object] = {}  # atlas folder -> the collection it was built over, in this server


def remember_collection(folder, collection) -> None:
    _COLLECTIONS[str(folder)] = collection


def atlas_collection(found):
    """The pictures of an atlas: remembered from an in-app build, or reopened from its source."""
    return _COLLECTIONS.get(str(found.folder)) or found.collection()


def atlas_matches(found, model) -> bool:
    """Whether the atlas was built from this very network (its weights' fingerprint)."""
    from vislib.models import fingerprint
    return found.manifest["model"]["fingerprint"] == fingerprint(model)


def open_atlas_for(model, layer: str):
    """The atlas opened on the Atlas page, if it covers this network's `layer`; else None."""
    from vislib import atlas
    path = st.session_state.get("atlas")
    if not path:
        return None
    try:
        found = atlas.open(path)
    except atlas.AtlasError:
        return None
    return found if atlas_matches(found, model) and layer in found.layers and found.manifest["pass_complete"] else None
