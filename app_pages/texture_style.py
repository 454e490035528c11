import streamlit as st

from ui import presets, sidebar, widgets
from ui import synthesis as page
from vislib import images, render, synthesis
from vislib.synthesis import style

model, model_key, picture, image_key = sidebar.current(needs=("layers",))
SAMPLES = synthesis.samples.texture_samples()
st.title("Texture and style")
st.caption("A texture is which features occur together, wherever they occur: the Gram matrices of a layer's "
           "channels (Gatys et al. 2015). Matching them from noise grows a new texture; matching them while "
           "keeping a photo's deeper activations paints the photo in another picture's style (Gatys et al. "
           "2016). On networks other than VGG the activations are first smoothed with a softmax (Wang et al. "
           "2021), without which their Gram matrices carry little style.")
page.cpu_note(model)


@st.cache_data(max_entries=8, show_spinner=False)
def _sample(name: str):
    return SAMPLES[name]()


def _picker(label: str, default: str, key: str):
    name = st.selectbox(label, list(SAMPLES), index=list(SAMPLES).index(default), key=f"{key}-sample")
    upload = st.file_uploader("...or your own picture", type=images.SUPPORTED_TYPES, key=f"{key}-upload",
                              max_upload_size=images.MAX_BYTES >> 20)
    if upload is None:
        return _sample(name), name
    try:
        return images.load_image(upload), upload.name.rsplit(".", 1)[0]
    except images.ImageError as err:
        st.error(f"{upload.name}: {err} Using {name} meanwhile.")
        return _sample(name), name


def _settings(key: str) -> dict:
    gpu = page.on_gpu(model)
    c1, c2, c3, c4 = st.columns(4)
    size = c1.select_slider("Size (px)", [64, 96, 128, 192, 256, 384, 512], 256 if gpu else 128, key=f"{key}-size")
    steps = c2.slider("Steps", 10, 500, 200 if gpu else 60, 10, key=f"{key}-steps")
    optimizer = c3.radio("Optimiser", ["lbfgs", "adam"], key=f"{key}-opt", horizontal=True,
                         format_func={"lbfgs": "L-BFGS (quality)", "adam": "Adam (smooth previews)"}.get)
    seed = c4.number_input("Seed", 0, 10_000, 0, key=f"{key}-seed")
    layers = st.multiselect("Style layers (Gram matrices)", [info.name for info in model.layers()],
                            style.style_layers(model), key=f"{key}-layers-{model_key}")
    smoothing = st.toggle("Activation smoothing (Wang et al. 2021)", style.smoothing_default(model),
                          key=f"{key}-smooth-{model_key}")
    return dict(size=size, steps=steps, optimizer=optimizer, seed=seed, smoothing=smoothing, layers=layers or None)


def _row(kept, captions: list[str], stem: str) -> None:
    if kept and kept["result"] is not None:
        results = [image for _, image in kept["result"]]
        for col, image, caption in zip(st.columns(len(results)), results, captions):
            col.image(image, caption=caption, width="stretch")
        widgets.download_png(render.grid(results, len(results)), f"{stem}.png", "Download the row", key=f"dl-{stem}")


texture_tab, style_tab = st.tabs(["Texture", "Style transfer"])
with texture_tab:
    sample, sample_name = _picker("Sample texture", "brick", "tex")
    st.image(sample, caption="The sample", width=160)
    presets.picker("texture")
    s = _settings("tex")
    presets.remember("texture")
    kept = page.run(f"texture-{model_key}", lambda p: synthesis.texture(model, sample, progress=p, **s),
                    "Grow the texture")
    page.show(kept, f"texture-{sample_name}", "Texture")
    st.subheader("Deeper layers, larger structures")
    st.caption("The texture matched with the first style layer's Gram only, then the first two, and so on: "
               "shallow layers keep colours and fine grain, deeper ones larger shapes.")
    sets = style.deeper_layer_sets(model)
    each = max(10, s["steps"] // len(sets))
    row_args = {k: v for k, v in s.items() if k not in ("steps", "layers")}
    kept_row = page.run(f"texture-row-{model_key}", lambda p: synthesis.texture_row(
        model, sample, steps=each, progress=p, **row_args), f"Compare {len(sets)} layer sets ({each} steps each)")
    _row(kept_row, [f"up to {layers[-1]}" for layers in sets], f"texture-{sample_name}-layers")

with style_tab:
    left, right = st.columns(2)
    left.image(picture, caption="Content: the sidebar's picture", width=200)
    with right:
        style_picture, style_name = _picker("Style picture", "mosaic", "sty")
        st.image(style_picture, caption="Style", width=200)
    c1, c2 = st.columns(2)
    weight = c1.select_slider("Style weight", [1, 3, 10, 30, 100, 300, 1000], synthesis.STYLE_WEIGHT, key="sty-weight")
    names = [info.name for info in model.layers()]
    content_layer = c2.selectbox("Content layer", names, names.index(style.content_layer(model)),
                                 key=f"sty-content-{model_key}")
    presets.picker("style")
    s = _settings("sty")
    presets.remember("style")
    args = dict(size=s["size"], style_weight=weight, content_layer=content_layer, style_layers=s["layers"],
                seed=s["seed"], optimizer=s["optimizer"])
    kept = page.run(f"style-{model_key}", lambda p: synthesis.style_transfer(
        model, picture, style_picture, steps=s["steps"], smoothing=s["smoothing"], progress=p, **args), "Paint")
    page.show(kept, f"style-{style_name}", "Stylised")
    st.subheader("With and without activation smoothing")
    kept_pair = page.run(f"style-pair-{model_key}", lambda p: synthesis.smoothing_pair(
        model, picture, style_picture, steps=s["steps"], progress=p, **args), "Compare (runs twice)")
    _row(kept_pair, ["without smoothing", "with smoothing"], f"style-{style_name}-smoothing")
