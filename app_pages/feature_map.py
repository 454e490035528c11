import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui import jobs, maps, presets, sidebar, widgets
from vislib import render
from vislib.data import embedding

MAX_GRID, MAX_SHOWN, TILE = 1024, 64, 64
model, model_key, picture, image_key = sidebar.current(needs=("classifier",))
st.title("Feature map")
st.caption("Every picture of the collection becomes one point: its feature vector (the network's last "
           "layer before the classifier) squeezed into two dimensions. PCA keeps the two directions of "
           "largest spread; t-SNE keeps each picture's nearest neighbours near it, so groups the network "
           "finds alike become islands. Drag a box or a lasso over points to see their pictures.")

collection, collection_key, features = maps.collection_features(
    model, model_key, "map", 4, "a map needs at least 4")

method = st.radio("Map", ["t-SNE", "PCA"], horizontal=True, key="map-method")
if method == "PCA":
    points, params = maps.pca(features, model_key, collection_key), ("pca",)
else:
    presets.picker("feature_map")
    left, right = st.columns(2)
    perplexity = left.slider("Perplexity (about how many neighbours each picture keeps close)", 2, 50,
                             min(30, max(2, (len(collection) - 1) // 3)), key="map-perplexity")
    seed = right.number_input("Seed", 0, 10_000, 0, key="map-seed")
    presets.remember("feature_map")
    params = ("tsne", perplexity, seed)
    run_key = f"tsne:{model_key}:{collection_key}:{perplexity}:{seed}"
    if len(collection) <= maps.AT_ONCE or st.session_state.get(run_key):
        with st.spinner("Computing the t-SNE map..."):
            points = maps.tsne(features, model_key, collection_key, perplexity, seed)
    else:
        colours = maps.label_colours(collection)

        def job(progress):
            def report(step, total, preview=None, **info):
                return progress(step, total, maps.preview(info["embedding"], colours), kl=info["kl"])
            return maps.tsne(features, model_key, collection_key, perplexity, seed, _progress=report)

        kept = jobs.run(run_key, job, label="Compute the t-SNE map")
        if not kept or kept["result"] is None:
            st.stop()
        points = kept["result"]
    st.session_state[run_key] = True

labels = [collection.label_name(i) or "(no label)" for i in range(len(collection))]
fig = go.Figure()
Scatter = go.Scattergl if len(points) > 1000 else go.Scatter
for name in sorted(set(labels)):
    # Plain lists, not numpy arrays: plotly would send those as typed arrays, whose selected
    # points come back from the browser as {"0": value} objects instead of numbers.
    idx = [i for i, lab in enumerate(labels) if lab == name]
    fig.add_trace(Scatter(x=points[idx, 0].tolist(), y=points[idx, 1].tolist(), customdata=idx, name=name,
                          mode="markers", marker=dict(size=6 if len(points) > 1000 else 9),
                          hovertemplate=f"{name}: picture %{{customdata}}<extra></extra>"))
if st.checkbox("Put the sidebar's picture on the map", value=True, key="map-mine"):
    mine = maps.picture_features(model, model_key, picture, image_key)
    spot = embedding.pca_project(features, mine)[0] if method == "PCA" else embedding.place(features, points, mine)
    fig.add_scatter(x=[spot[0]], y=[spot[1]], mode="markers", name="your picture", hoverinfo="name",
                    marker=dict(symbol="star", size=22, color="black", line=dict(color="yellow", width=2)))
    st.caption("Your picture: " + ("projected onto the same two principal directions." if method == "PCA" else
               "t-SNE cannot place a new point, so the star sits at the mean position of its 8 nearest "
               "neighbours in feature space."))
fig.update_layout(height=560, margin=dict(l=0, r=0, t=10, b=0), dragmode="lasso",
                  xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False, scaleanchor="x"))
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"), key=f"map-{params}")
selected = sorted({int(p["customdata"]) for p in (event.selection.points if event and event.selection else [])
                   if isinstance(p.get("customdata"), (int, float))})

if selected:
    more = f" (the first {MAX_SHOWN})" if len(selected) > MAX_SHOWN else ""
    st.subheader(f"{len(selected)} selected pictures{more}")
    tiles = [maps.thumbnail(collection, collection_key, i, TILE) for i in selected[:MAX_SHOWN]]
    st.image(tiles, caption=[labels[i] if labels[i] != "(no label)" else f"picture {i}" for i in selected[:MAX_SHOWN]],
             width=TILE)
    widgets.download_png(render.grid(tiles, cols=8), "selected-pictures.png", "Download the selected pictures")
else:
    st.caption("Nothing selected yet: drag a lasso (or choose the box tool) over some points.")

if method == "t-SNE" and st.checkbox("Snap the map to a grid of pictures (the famous 'ImageNet on a grid')",
                                     key="map-grid"):
    shown = np.arange(len(points)) if len(points) <= MAX_GRID else \
        np.random.default_rng(0).choice(len(points), MAX_GRID, replace=False)
    side = math.ceil(math.sqrt(len(shown)))
    cells = maps.grid_layout(points[shown], model_key, collection_key, params, side, side)
    tiles = [Image.new("RGB", (TILE, TILE), (255, 255, 255))] * (side * side)
    for i, cell in zip(shown, cells):
        tiles[cell] = maps.thumbnail(collection, collection_key, int(i), TILE)
    sheet = render.grid(tiles, side, pad=0)
    st.image(sheet, caption=f"{len(shown)} pictures, each in the grid cell nearest its place on the t-SNE map"
             + (f" (a random {MAX_GRID} of {len(points)})" if len(points) > MAX_GRID else ""))
    widgets.download_png(sheet, "tsne-grid.png", "Download the grid")
