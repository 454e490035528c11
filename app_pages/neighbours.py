import streamlit as st
from PIL import Image, ImageDraw

from ui import maps, sidebar, widgets
from vislib import render
from vislib.data import embedding

TILE, PER_PAGE = 96, 32
model, model_key, picture, image_key = sidebar.current(needs=("classifier",))
st.title("Nearest neighbours")
st.caption("Which pictures of a collection are closest to this one? In pixel space (the small pictures "
           "compared pixel by pixel) the neighbours share colours and layout; in the network's feature "
           "space (its last layer before the classifier) they share what is in them, even when every "
           "pixel differs. That is the sense in which the last layer has learned what things are.")

collection, collection_key, features = maps.collection_features(
    model, model_key, "neighbours", 2, "it needs more to have neighbours")
pixels = maps.pixels(collection, collection_key)

source = st.radio("Neighbours of", ["The sidebar's picture", "A picture of the collection"], horizontal=True,
                  key="nn-source")
k = st.slider("Neighbours", 1, min(16, len(collection) - 1), min(8, len(collection) - 1), key="nn-k")
if source == "A picture of the collection":
    pages = -(-len(collection) // PER_PAGE)
    page = st.number_input(f"Page of pictures (1 to {pages})", 1, pages, key="nn-page") if pages > 1 else 1
    shown = list(range((page - 1) * PER_PAGE, min(len(collection), page * PER_PAGE)))
    pick = widgets.tile_picker([maps.thumbnail(collection, collection_key, i) for i in shown],
                               [f"picture {i}" for i in shown], key=f"nn-pick-{collection_key}", cols=8)
    query = shown[pick]
    query_image = collection[query][0]
    query_features, query_pixels = query, query  # an index: the picture itself is left out
else:
    query_image = picture
    query_features = maps.picture_features(model, model_key, picture, image_key)
    query_pixels = maps.picture_pixels(picture)


def strip(title, slug, indices, dist, unit):
    tiles, captions = [], []
    for i in map(int, indices):
        tile = maps.thumbnail(collection, collection_key, i, TILE).copy()
        ImageDraw.Draw(tile).text((3, TILE - 13), f"{dist[i]:.3f}", fill=(255, 255, 0), stroke_width=1,
                                  stroke_fill=(0, 0, 0))
        tiles.append(tile)
        captions.append(f"{collection.label_name(i) or f'picture {i}'}: {unit} {dist[i]:.3f}")
    st.subheader(title)
    st.image(tiles, caption=captions, width=TILE)
    widgets.download_png(render.grid(tiles, cols=len(tiles)), f"neighbours-{slug}.png",
                         f"Download the {slug}-space neighbours")


pix_near = embedding.nearest(pixels, query_pixels, k, metric="euclidean")
feat_near = embedding.nearest(features, query_features, k)
left, right = st.columns([1, 4])
left.image(query_image.resize((160, 160), Image.Resampling.BILINEAR), caption="The picture")
with right:
    strip("In pixel space", "pixel", pix_near, embedding.distances(pixels, query_pixels, "euclidean"),
          "Euclidean distance")
    strip("In feature space", "feature", feat_near, embedding.distances(features, query_features), "cosine distance")
    if collection.classes and source == "A picture of the collection":
        mine = collection.label_name(query)
        same = [sum(collection.label_name(int(i)) == mine for i in near) for near in (pix_near, feat_near)]
        st.write(f"Neighbours labelled **{mine}** like the picture: {same[0]} of {k} in pixel space, "
                 f"{same[1]} of {k} in feature space.")
