import streamlit as st
from PIL import Image

from ui import cached, links, sidebar, widgets
from vislib import activations, render

PER_PAGE = 64
model, model_key, picture, image_key = sidebar.current(needs=("layers",))
st.title("Activation maps")
st.caption("Each channel of a layer is one detector applied everywhere in the image; its map is bright where "
           "it fires. Early layers answer to edges and colours, deep layers to parts and objects. A cell "
           "sees only its receptive field of the input.")

layers = model.layers()
info = st.selectbox("Layer", layers, index=len(layers) // 2, key=f"layer-{model_key}",
                    format_func=lambda l: f"{l.name} ({l.kind}, {l.channels} channels, {l.size[0]}x{l.size[1]})")
st.write(f"Output {info.channels} x {info.size[0]} x {info.size[1]}; one cell covers {info.stride} input pixels "
         f"(stride) and sees {info.receptive_field} x {info.receptive_field} input pixels (receptive field).")

maps = cached.maps(model, model_key, picture, image_key, info.name)
order = activations.channel_order(maps)
pages = -(-len(order) // PER_PAGE)
page = st.number_input(f"Page of channels (1 to {pages}), strongest mean activation first", 1, pages,
                       key=f"page-{model_key}-{info.name}") if pages > 1 else 1
shown = order[(page - 1) * PER_PAGE: page * PER_PAGE]
tiles = [render.colorize(maps[c]) for c in shown]

grid_col, detail_col = st.columns([3, 2])
with grid_col:
    pick = widgets.tile_picker(tiles, [f"channel {c}" for c in shown], key=f"act-{info.name}")
    widgets.download_png(render.grid([render.enlarge(t, 64) for t in tiles], 8),
                         f"{info.name}-page{page}.png", "Download this page of maps")
with detail_col:
    channel = shown[pick]
    view = cached.network_view(model, model_key, picture, image_key)
    alpha = st.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05)
    large = render.colorize(maps[channel]).resize(view.size, Image.Resampling.NEAREST)
    blended = render.overlay(view, maps[channel], alpha)
    st.image(large, caption=f"Channel {channel}: mean {maps[channel].mean():.3f}, max {maps[channel].max():.3f}")
    links.unit_link(model_key, info.name, channel)
    st.image(blended, caption="Overlaid on what the network sees")
    widgets.download_png(large, f"{info.name}-ch{channel}.png", "Download map")
    widgets.download_png(blended, f"{info.name}-ch{channel}-overlay.png", "Download overlay")
