import streamlit as st
from PIL import Image

from ui import collection as collections, jobs, links, sidebar, units as unit_ui, widgets
from vislib import atlas, render

PER_PAGE, TILE = 48, 96
model, model_key, picture, image_key = sidebar.current(needs=("layers",))
st.title("Atlas of a network")
st.caption("Every channel of a layer at a glance, each as the picture it likes best; click one to see its top "
           "pictures and open its page. An atlas is built once (here for a small one, or with `vislib atlas build` "
           "for a large collection, on Ray if you like) and opens instantly.")

opened, built = st.tabs(["Open an atlas", "Build one here"])
with opened:
    path = st.text_input("Atlas folder on the server", key="atlas-path",
                         help="A folder written by `vislib atlas build --out DIR`.")
    if path.strip():
        try:
            st.session_state["atlas"] = str(atlas.open(path.strip()).folder)
        except atlas.AtlasError as err:
            st.error(str(err))
with built:
    names = [info.name for info in model.layers()]
    chosen_layers = st.multiselect("Layers", names, default=[names[len(names) // 2]], key=f"atlas-layers-{model_key}")
    chosen = collections.pick_collection("atlas")
    k = st.slider("Top pictures per channel", 4, 16, 9, key="atlas-k")
    steps = st.select_slider("Feature visualisation steps", [16, 32, 64, 128, 256, 512],
                             32 if model.device.type == "cpu" else 256, key="atlas-steps")
    if chosen and chosen_layers:
        collection, collection_key = chosen
        folder = unit_ui.built_atlas_folder(model, chosen_layers, collection_key, k, steps)
        kept = jobs.run(f"atlas:{folder.name}", lambda progress: atlas.build(
            model, chosen_layers, collection, folder, k=k, steps=steps, progress=progress), label="Build the atlas")
        if kept and kept["result"] is not None:
            st.session_state["atlas"] = str(folder)
            unit_ui.remember_collection(folder, collection)
            if not kept["result"].complete:
                st.info("Stopped: build again to carry on where it stopped.")

if "atlas" not in st.session_state:
    st.stop()
found = atlas.open(st.session_state["atlas"])
st.subheader(f"{found.manifest['model']['name']} over {found.manifest['collection']['name']}")
if not unit_ui.atlas_matches(found, model):
    st.info(f"This atlas is of {found.manifest['model']['name']}; pick that network in the sidebar to open its units.")
    st.stop()
layer = st.selectbox("Layer", found.layers, key="atlas-layer")
count = found.channels(layer)
pages = -(-count // PER_PAGE)
page = st.number_input(f"Page (1 to {pages})", 1, pages, key=f"atlas-page-{layer}") if pages > 1 else 1
shown = list(range((page - 1) * PER_PAGE, min(page * PER_PAGE, count)))
grey = Image.new("RGB", (TILE, TILE), (128, 128, 128))
tiles = [(found.feature_visualization(layer, c) or grey).resize((TILE, TILE)) for c in shown]
pick = widgets.tile_picker(tiles, [f"channel {c}" for c in shown], key=f"atlas-{layer}", cols=8, tile_px=TILE)
widgets.download_png(render.grid(tiles, cols=8), f"atlas-{layer}-page{page}.png", "Download this page")
channel = shown[pick]
links.unit_link(model_key, layer, channel, f"Open channel {channel}'s page")
examples = found.examples(layer, channel)
st.write(f"Channel {channel}'s top pictures: " + ", ".join(f"#{i} ({a:.2f})" for i, a in examples))
