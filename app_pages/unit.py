import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import collection as collections, links, sidebar, units as unit_ui, widgets
from vislib import render

model, model_key, picture, image_key = sidebar.current(needs=("layers",))
st.title("What one unit detects")
st.caption("A unit is one channel of a layer: one detector applied everywhere in the picture. Three ways to see "
           "what it answers to: the picture it likes best (made by gradient ascent), the pictures of a collection "
           "that excite it most, and, inside each of those, the pixels that made it fire (guided backprop).")

layers = model.layers()
names = [info.name for info in layers]
asked = links.wanted("layer")
layer_index = names.index(asked) if asked in names else len(names) // 2
info = st.selectbox("Layer", layers, index=layer_index, key=f"unit-layer-{model_key}-{asked}",
                    format_func=lambda l: f"{l.name} ({l.channels} channels, receptive field {l.receptive_field} px)")
try:
    asked_channel = int(links.wanted("channel", "0"))
except ValueError:
    asked_channel = 0
channel = int(st.number_input(f"Channel (0 to {info.channels - 1})", 0, info.channels - 1,
                              min(max(asked_channel, 0), info.channels - 1), key=f"unit-ch-{info.name}-{asked_channel}"))
st.query_params.from_dict({**({} if model_key.startswith("custom:") else {"model": model_key}),
                           "layer": info.name, "channel": str(channel)})
before, after = st.columns(2)
with before:
    if channel > 0:
        links.unit_link(model_key, info.name, channel - 1, f"Channel {channel - 1}")
with after:
    if channel < info.channels - 1:
        links.unit_link(model_key, info.name, channel + 1, f"Channel {channel + 1}")

from_atlas = unit_ui.open_atlas_for(model, info.name)
st.header("The picture it likes best")
atlas_picture = from_atlas.feature_visualization(info.name, channel) if from_atlas is not None else None
if atlas_picture is not None:
    st.image(atlas_picture, width=150, caption="from the atlas")
unit_ui.feature_visualizations(model, model_key, info.name, channel)

st.header("The pictures that excite it most")
collection = unit_ui.atlas_collection(from_atlas) if from_atlas is not None else None
if collection is not None:
    survey, collection_key = from_atlas, collection.key
    st.caption(f"From the atlas over {collection.name} ({len(collection):,} pictures).")
else:
    chosen = collections.pick_collection("unit")
    if chosen is None:
        st.stop()
    collection, collection_key = chosen
    survey = unit_ui.survey(model, model_key, info.name, collection, collection_key)
    if survey is None:
        st.stop()
found = unit_ui.examples(model, model_key, info.name, channel, collection, collection_key, survey)
if not found:
    st.info("No picture of this collection was seen by this unit.")
    st.stop()
st.image([e.image for e in found] + [e.guided for e in found], width=96,
         caption=[f"#{i + 1}: {e.activation:.3f}" for i, e in enumerate(found)] +
                 [f"#{i + 1}: guided backprop" for i in range(len(found))])
st.write("Top row: the receptive field of each picture's strongest cell. Bottom row: guided backprop of the unit at "
         "that cell - bright and dark pixels made it fire, grey ones did not matter.")
widgets.download_png(render.grid([e.image.resize((96, 96)) for e in found] +
                                 [e.guided.resize((96, 96)) for e in found], cols=len(found)),
                     f"{info.name}-ch{channel}-examples.png", "Download the examples")

values = survey.activations(info.name, channel)
unit = survey.unit(info.name, channel)
fig = go.Figure(go.Histogram(x=np.asarray(values), nbinsx=40, marker_color="#4c78a8"))
fig.update_layout(height=260, margin=dict(l=0, r=0, t=30, b=0), title="Strongest activation in each picture",
                  xaxis_title="activation", yaxis_title="pictures")
st.plotly_chart(fig, key=f"unit-hist-{info.name}-{channel}")
# The histogram counts each picture's strongest cell; the mean is over every cell of every picture (its map's
# average), which sits far lower and can be negative - said in words, so the two are not read as one scale.
st.caption(f"Fires (above zero somewhere) in {unit['fired']:.0%} of the {len(values):,} pictures; its highest "
           f"activation anywhere is {unit['peak']:.3f}; averaged over all cells of all pictures it is "
           f"{unit['mean']:.3f}.")

st.header("The classes it pushes up")
unit_ui.class_effects(model, model_key, info.name, channel, collection, collection_key)
