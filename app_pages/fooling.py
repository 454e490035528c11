import streamlit as st

from ui import cached, presets, sidebar
from ui import synthesis as ui
from vislib import synthesis

model, model_key, picture, image_key = sidebar.current()
st.title("Fooling images")
st.caption("Change every pixel of your picture by at most a few grey levels, in the direction that raises another "
           "class (targeted projected gradient ascent): the picture looks the same to you, the network now sees "
           "something else. The result is an 8-bit picture whose centre is exactly what the network looks at, so "
           "it still fools the network after you download it and upload it again.")
left, right = st.columns([1, 2])
with left:
    presets.picker("fooling")
    target = ui.class_picker(model, "fool-class", default=9)
    eps = st.slider("Largest change per pixel (grey levels out of 255)", 1, 16, 4, key="fool-eps")
    max_steps = st.slider("At most this many steps", 10, 300, 100, 10, key="fool-steps")
    seed = st.number_input("Seed", 0, 10_000, 0, key="fool-seed")
    presets.remember("fooling")
with right:
    kept = ui.run(f"fool-{model_key}-{image_key}", lambda progress: synthesis.fooling_image(
        model, picture, target, eps=eps / 255, max_steps=max_steps, seed=seed, progress=progress))
if kept and isinstance(kept["result"], tuple):
    result, info = kept["result"]
    original = synthesis.network_picture(model, picture)
    cols = st.columns(3)
    cols[0].image(original, caption="Original", width="stretch")
    cols[1].image(result, caption=f"Fooling image (largest change {info['linf'] * 255:.0f}/255)", width="stretch")
    cols[2].image(synthesis.difference(original, result), caption="Difference, amplified", width="stretch")
    verdict = "fools the network" if info["fooled"] else "does not fool it yet: allow more steps or a larger change"
    st.write(f"After {info['steps']} steps the picture {verdict}: {model.labels[target]} "
             f"{info['target_before']:.3f} -> {info['target_after']:.3f}, {model.labels[info['original_class']]} "
             f"{info['original_before']:.3f} -> {info['original_after']:.3f} (after a PNG round trip).")
    before_col, after_col = st.columns(2)
    with before_col:
        st.write("Predictions before")
        ui.top_table(cached.top5(model, model_key, picture, image_key))
    with after_col:
        st.write("Predictions after")
        ui.top_table(model.top_k(result, 5))
    ui.downloads(kept, result, f"fooling-{target}")
    ui.loss_chart(kept["history"])
elif kept:
    ui.show(kept, f"fooling-{target}", "Stopped")
