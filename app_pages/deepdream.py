import streamlit as st

from ui import links, presets, sidebar
from ui import synthesis as ui
from vislib import synthesis

model, model_key, picture, image_key = sidebar.current(needs=("layers",))
st.title("DeepDream")
st.caption("Whatever a layer sees in your picture, make more of it: gradient ascent on the layer's activations, "
           "on the picture itself, from a small copy up to full size (octaves), with random shifts and steps "
           "scaled by the gradient's mean size, as in the original DeepDream notebook (Mordvintsev et al. 2015). "
           "Shallow layers add strokes and textures, deep layers eyes, fur and faces.")
ui.cpu_note(model)
gpu = ui.on_gpu(model)
left, right = st.columns([1, 2])
with left:
    presets.picker("deepdream")
    info = ui.layer_picker(model, f"dream-layer-{model_key}", len(model.layers()) // 2)
    channel = st.number_input("Channel (-1: the whole layer)", -1, info.channels - 1, -1, key="dream-channel")
    if channel >= 0:
        links.unit_link(model_key, info.name, int(channel))
    octaves = st.slider("Octaves", 1, 6, 4, key="dream-octaves")
    steps = st.slider("Steps per octave", 1, 50, 10, key="dream-steps")
    octave_scale = st.slider("Scale between octaves", 1.1, 2.0, 1.4, 0.1, key="dream-scale")
    size = st.select_slider("Longer side (pixels)", [128, 192, 256, 384, 512, 768], 512 if gpu else 256,
                            key="dream-size")
    seed = st.number_input("Seed", 0, 10_000, 0, key="dream-seed")
    presets.remember("deepdream")
layer = info.name if channel < 0 else f"{info.name}:{channel}"
with right:
    kept = ui.run(f"dream-{model_key}-{image_key}", lambda progress: synthesis.deepdream(
        model, picture, layer, octaves=octaves, steps_per_octave=steps, seed=seed, progress=progress,
        octave_scale=octave_scale, size=size))
    ui.show(kept, f"deepdream-{layer.replace(':', '-')}", f"Dreamed on {layer}", width=480)
