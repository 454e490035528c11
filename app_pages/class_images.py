import streamlit as st

from ui import presets, sidebar
from ui import synthesis as ui
from vislib import synthesis

model, model_key, _, _ = sidebar.current()
st.title("Class images")
st.caption("Start from noise and change the pixels, by gradient steps, to raise one class's score while the "
           "network stays fixed (Simonyan et al. 2014). Without regularisers the result is noise that the network "
           "trusts; Yosinski et al. 2015 blur and clip; 'Robust' optimises a decorrelated Fourier image under "
           "small shifts, zooms and rotations (Olah et al. 2017), which also fools other networks.")
ui.cpu_note(model)
gpu = ui.on_gpu(model)
left, right = st.columns([1, 2])
with left:
    presets.picker("class_images")
    target = ui.class_picker(model, "classvis-class", default=1)
    recipes = list(synthesis.PRESETS)
    preset = st.selectbox("Preset", recipes, index=recipes.index(synthesis.DEFAULT_PRESET), key="classvis-preset")
    st.caption(", ".join(f"{k} {v}" for k, v in synthesis.PRESETS[preset].items()))
    steps = st.slider("Steps", 10, 500, 200 if gpu else 100, 10, key="classvis-steps")
    size = st.select_slider("Size (pixels)", [64, 96, 128, 160, 192, 224, 256], 224 if gpu else 160,
                            key="classvis-size")
    seed = st.number_input("Seed", 0, 10_000, 0, key="classvis-seed")
    presets.remember("class_images")
with right:
    kept = ui.run(f"classvis-{model_key}", lambda progress: synthesis.class_visualization(
        model, target, steps=steps, seed=seed, preset=preset, size=size, progress=progress))
    picture = ui.show(kept, f"class-{target}-{preset.replace(' ', '_')}", f"{model.labels[target]}, {preset}")
    if picture is not None:
        st.write("What the network says about this image:")
        ui.top_table(synthesis.top_classes(model, picture))
