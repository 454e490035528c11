import streamlit as st

from ui import cached, sidebar, widgets
from vislib import activations, render

model, model_key, picture, image_key = sidebar.current(needs=("first_conv",))
st.title("First-layer filters")
st.caption("The first layer's weights live in pixel space, so they can be drawn as pictures. Trained "
           "networks learn oriented edges, stripes and opposing colours here, whatever their task.")

weights = activations.first_layer_weights(model)
count, channels, k, _ = weights.shape
shared = st.toggle("One shared scale (shows which filters are strong) instead of one scale per filter")
tiles = activations.filter_tiles(weights, shared_scale=shared)
responses = cached.filter_responses(model, model_key, picture, image_key)
st.write(f"{count} filters of {k} x {k} pixels over {channels} colour channel{'s' * (channels > 1)}.")

grid_col, detail_col = st.columns([3, 2])
with grid_col:
    pick = widgets.tile_picker(tiles, [f"filter {i + 1}" for i in range(count)], key="filter", cols=min(count, 8))
    widgets.download_png(render.grid([render.enlarge(t, 48) for t in tiles], min(count, 8)), "first-layer-filters.png",
                         "Download all filters")
with detail_col:
    large = render.enlarge(tiles[pick], 192)
    st.image(large, caption=f"Filter {pick + 1}, enlarged")
    response = render.colorize(responses[pick], "RdBu_r", -abs(responses[pick]).max(), abs(responses[pick]).max())
    st.image(response, width="stretch",
             caption="Its response on your image: red where the image matches the pattern, blue where it "
                     "matches its opposite.")
    widgets.download_png(large, f"filter-{pick + 1}.png", "Download filter")
    widgets.download_png(response, f"filter-{pick + 1}-response.png", "Download response")
