import streamlit as st
from PIL import Image, ImageDraw, ImageOps

from ui import collection as collections, jobs, links, presets, sidebar, widgets
from vislib import render
from vislib.data import patches

TILE, PER_PAGE = 72, 12
model, model_key, picture, image_key = sidebar.current(needs=("layers",))
st.title("Maximally activating patches")
st.caption("Run many pictures through the network and, for one channel, keep the image regions where it "
           "fires most. Each patch is exactly what one cell of the layer sees (its receptive field): small "
           "and edge-like early on, large and object-like deep in the network.")

chosen = collections.pick_collection("patches")
if chosen is None:
    st.stop()
collection, collection_key = chosen
layers = model.layers()
info = st.selectbox("Layer", layers, index=len(layers) // 2, key=f"patch-layer-{model_key}",
                    format_func=lambda l: f"{l.name} ({l.channels} channels, receptive field {l.receptive_field} px)")
presets.picker("patches")
k = st.slider("Patches per channel", 4, 16, 9, key="patch-k")
presets.remember("patches")
per_picture = st.toggle("One patch per picture", True, key="patch-per-picture",
                        help="Each picture offers only its strongest cell, so the patches come from different "
                             "pictures (as the lecture shows a unit's examples). Off: the strongest cells anywhere, "
                             "which may be neighbours in one picture.")

run_key = f"patches:{model_key}:{info.name}:{collection_key}:{k}:{per_picture}"
state = patches.saved_state(model, info.name, collection, k, per_picture)
if state is None:
    st.write(f"One pass over the {len(collection):,} pictures finds the top {k} patches of all "
             f"{info.channels} channels of {info.name} at once.")
    kept = jobs.run(run_key, lambda progress: patches.cached_state(model, info.name, collection, k, progress,
                                                                   per_picture), label="Find the patches")
    state = kept["result"] if kept else None
    if state is None:
        st.stop()


def tile(patch: patches.Patch) -> Image.Image:
    # A patch clipped at the picture's edge is narrower than the receptive field: pad it, don't stretch it.
    side = max(info.receptive_field, *patch.image.size)
    return ImageOps.pad(patch.image, (side, side), color=(128, 128, 128)).resize((TILE, TILE), Image.Resampling.NEAREST)


def in_context(patch: patches.Patch) -> Image.Image:
    seen = model.to_image(model.preprocess(collection[patch.index][0]))
    scale = max(1, 320 // seen.width)
    big = seen.resize((seen.width * scale, seen.height * scale), Image.Resampling.NEAREST)
    x0, y0, x1, y1 = (v * scale for v in patch.box)
    ImageDraw.Draw(big).rectangle((x0, y0, x1 - 1, y1 - 1), outline=(255, 40, 40), width=max(2, scale))
    return big


mode = st.radio("Show", ["One channel", "Browse channels"], horizontal=True, key="patch-mode")
if mode == "Browse channels":
    order = state.values[:, 0].argsort()[::-1].tolist()  # strongest best patch first
    pages = -(-len(order) // PER_PAGE)
    page = st.number_input(f"Page (1 to {pages}), strongest channels first", 1, pages, key=f"patch-page-{info.name}")
    sheets = []
    for channel in order[(page - 1) * PER_PAGE: page * PER_PAGE]:
        strip = render.grid([tile(p) for p in patches.patches(state, model, collection, channel)], cols=k)
        sheets.append(strip)
        st.image(strip, caption=f"channel {channel}: best activation {state.values[channel, 0]:.3f}")
    widgets.download_png(render.grid(sheets, cols=1, pad=6), f"{info.name}-patches-page{page}.png",
                         "Download this page")
    st.stop()

channel = st.number_input(f"Channel (0 to {info.channels - 1})", 0, info.channels - 1, key=f"patch-ch-{info.name}")
found = patches.patches(state, model, collection, int(channel))
links.unit_link(model_key, info.name, int(channel))
grid_col, detail_col = st.columns([3, 2])
with grid_col:
    pick = widgets.tile_picker([tile(p) for p in found],
                               [f"#{i + 1}: activation {p.activation:.3f}, picture {p.index}" for i, p in enumerate(found)],
                               key=f"patch-{info.name}-{channel}", cols=min(k, 6), tile_px=TILE)
    st.write("Activations: " + ", ".join(f"{p.activation:.3f}" for p in found))
    widgets.download_png(render.grid([tile(p) for p in found], cols=min(k, 6)), f"{info.name}-ch{channel}-patches.png",
                         "Download the patches")
with detail_col:
    patch = found[pick]
    whole = in_context(patch)
    label = collection.label_name(patch.index)
    st.image(whole, caption=f"Picture {patch.index}{f' ({label})' if label else ''}: activation {patch.activation:.3f} "
             f"at cell {patch.cell}, box {patch.box}")
    widgets.download_png(whole, f"{info.name}-ch{channel}-picture{patch.index}.png", "Download the picture with its box")
