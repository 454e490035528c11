import streamlit as st

from ui import cached, presets, sidebar
from ui import synthesis as ui
from vislib import render, synthesis

model, model_key, picture, image_key = sidebar.current(needs=("layers",))
st.title("Inversion")
st.caption("What does a layer remember of your picture? Start from noise and change the pixels until the "
           "layer's features match those of your picture, with a total-variation penalty that asks for a "
           "natural image (Mahendran and Vedaldi 2015). Shallow layers keep almost everything; deep layers keep "
           "the parts that matter for the class and forget exact colours and positions.")
ui.cpu_note(model)
gpu = ui.on_gpu(model)
left, right = st.columns([1, 2])
with left:
    presets.picker("inversion")
    info = ui.layer_picker(model, f"invert-layer-{model_key}", len(model.layers()) // 3)
    steps = st.slider("Steps", 10, 500, 200 if gpu else 100, 10, key="invert-steps")
    tv = st.select_slider("Total-variation weight", [0.0, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3], 5e-4, key="invert-tv")
    seed = st.number_input("Seed", 0, 10_000, 0, key="invert-seed")
    presets.remember("inversion")
    st.image(cached.network_view(model, model_key, picture, image_key), caption="What the network sees")
with right:
    kept = ui.run(f"invert-{model_key}-{image_key}", lambda progress: synthesis.invert(
        model, picture, info.name, steps=steps, seed=seed, progress=progress, tv=tv))
    ui.show(kept, f"inversion-{info.name}", f"Reconstructed from {info.name}")

st.subheader("From shallow to deep")
st.caption("Five layers spread over the network, each reconstructed with the settings above.")
row = ui.run(f"invert-row-{model_key}-{image_key}", lambda progress: synthesis.inversion_row(
    model, picture, steps=steps, seed=seed, progress=progress, tv=tv), label="Run the row")
if row and row["result"]:
    cols = st.columns(len(row["result"]))
    for col, (name, image) in zip(cols, row["result"]):
        col.image(image, caption=name, width="stretch")
    sheet = render.grid([image for _, image in row["result"]], len(row["result"]))
    ui.downloads(row, sheet, "inversion-row")
