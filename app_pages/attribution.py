import streamlit as st

from ui import attribution as view_of, cached, sidebar, trust as trust_view
from vislib import attribution

model, model_key, picture, image_key = sidebar.current()
st.title("Attribution")
st.caption("Which pixels made the network decide? Each method answers differently: gradients ask what would "
           "change the score, occlusion asks what the score misses when a part is hidden, relevance shares the "
           "score out layer by layer, and the baselines know nothing of the network at all. Left of each panel "
           "the map over the picture, right the raw map.")

labels = model.labels
top = cached.top5(model, model_key, picture, image_key)
name = lambda i: f"{labels[i]} ({i})"  # noqa: E731
pick_col, second_col = st.columns(2)
first = pick_col.selectbox("Class to explain (type to search)", range(len(labels)), index=top[0][0],
                           format_func=name, key=f"attr-class-{model_key}-{image_key}")
second = second_col.selectbox("A second class to contrast (optional)", [None, *range(len(labels))],
                              format_func=lambda i: "none" if i is None else name(i),
                              key=f"attr-second-{model_key}-{image_key}")
classes = [first] + ([second] if second is not None and second != first else [])
shown = view_of.pick_methods()

alpha_col, scale_col = st.columns(2)
alpha = alpha_col.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05)
shared = scale_col.radio("Colour scale", ["per map", "shared by the classes of a method"], horizontal=True) != "per map"
params = view_of.settings(model, model_key)

image = cached.network_view(model, model_key, picture, image_key)
x = view_of.network_input(model, picture)
matrix = view_of.Matrix(image, labels, classes, shown, alpha, shared)
matrix.fill_quick(model, model_key, picture, image_key, params)  # fast methods first, then the others
if matrix.fill_slow(model, model_key, x, image_key, params) and "occlusion" in shown:
    view_of.occlusion_row(model, model_key, picture, image_key, image, first, labels[first], params["occlusion"])
matrix.zip_download()

st.header("Can the maps be trusted?")
quick = [m for m in attribution.METHODS if not view_of.slow(m)]
trust_view.sanity(model, x, first, params, quick, f"{model_key}-{image_key}")
trust_view.scores(model, x, first, labels[first], {m: maps[0] for m, maps in matrix.maps.items()},
                  f"{model_key}-{image_key}")
trust_view.cut_out(model, model_key, x, image_key, first, labels[first], [m for m in shown if m in quick], params)
