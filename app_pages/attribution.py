import streamlit as st

from ui import attribution as view_of, cached, jobs, sidebar, widgets
from vislib import attribution, render, trust

model, model_key, picture, image_key = sidebar.current()
st.title("Attribution")
st.caption("Which pixels made the network decide? Each method answers differently: gradients ask what would "
           "change the score, occlusion asks what the score misses when a part is hidden. Left of each panel "
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
shown = st.multiselect("Methods to show", list(attribution.METHODS), default=list(attribution.METHODS),
                       format_func=view_of.method_name, key="attr-methods")

alpha_col, scale_col = st.columns(2)
alpha = alpha_col.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05)
shared = scale_col.radio("Colour scale", ["per map", "shared by the classes of a method"], horizontal=True) != "per map"
with st.expander("Settings (the papers' defaults)"):
    a, b, c = st.columns(3)
    layers = [info.name for info in model.layers()]
    layer = a.selectbox("Grad-CAM layer", layers, index=layers.index(attribution.gradcam_layer(model)),
                        key=f"attr-layer-{model_key}")
    baseline = b.radio("Integrated gradients starts from", attribution.BASELINES, horizontal=True,
                       index=attribution.BASELINES.index(view_of.default("integrated_gradients", "baseline")))
    samples = c.slider("SmoothGrad samples", 4, 32, view_of.default("smoothgrad", "samples"), 4)
    window = a.slider("Occlusion window (px)", 8, 64, view_of.default("occlusion", "window"), 4)
    stride = b.slider("Occlusion stride (px)", 4, 32, view_of.default("occlusion", "stride"), 4)
    steps = c.slider("Integrated gradients steps", 8, 64, view_of.default("integrated_gradients", "steps"), 8)
params = {"gradcam": {"layer": layer}, "guided_gradcam": {"layer": layer}, "smoothgrad": {"samples": samples},
          "integrated_gradients": {"baseline": baseline, "steps": steps},
          "occlusion": {"window": min(window, model.input_size), "stride": min(stride, window)}}

image = cached.network_view(model, model_key, picture, image_key)
header = st.columns([1, *[3] * len(classes)])
for col, cls in zip(header[1:], classes):
    col.markdown(f"**{labels[cls]}**")
cells = {}
for group, methods in attribution.grouped(shown).items():
    st.markdown("##### {}: {}".format(*attribution.GROUPS[group]))
    for method in methods:
        row = st.columns([1, *[3] * len(classes)])
        row[0].markdown(f"**{attribution.METHODS[method].label}**")
        row[0].caption(attribution.METHODS[method].explanation)
        cells[method] = [col.empty() for col in row[1:]]

panels, arrays = {}, {}
file_of = lambda method, cls: f"{method}-{cls}-{labels[cls]}".replace(" ", "_").replace("/", "_")  # noqa: E731


def draw(method, maps):
    scales = [attribution.colour_scale(maps)] * len(maps) if shared else [attribution.colour_scale([m]) for m in maps]
    for cell, cls, amap, (vmin, vmax, over, raw) in zip(cells[method], classes, maps, scales):
        picture_of = view_of.panel(image, amap, alpha, vmin, vmax, over, raw)
        file = file_of(method, cls)
        panels[file], arrays[file] = picture_of, amap
        with cell.container():
            st.image(picture_of, caption=f"range {vmin:.3g} to {vmax:.3g}")
            widgets.download_png(picture_of, f"{file}.png", "Download", key=f"dl-{file}")


# Fast methods first (one pass each), then the slow ones fill in as they finish.
order = sorted((m for m in shown if m != "occlusion"), key=lambda m: not attribution.METHODS[m].fast)
for method in order:
    try:
        maps = [view_of.attribution_map(model, model_key, picture, image_key, method, cls,
                                        tuple(params.get(method, {}).items())) for cls in classes]
    except ValueError as err:
        cells[method][0].error(str(err))
        continue
    draw(method, maps)

x = view_of.network_input(model, picture)
if "occlusion" in shown:
    st.subheader("Occlusion")
    st.caption("Slow: the network runs once for every place of the window. A coarse preview comes first.")
    occ = params["occlusion"]

    def occlusion_job(progress):
        preview, _ = attribution.occlusion_preview(model, x, classes[0], **occ)
        progress(0, len(classes), preview=render.overlay(image, preview, alpha))
        return [attribution.occlusion(model, x, cls, **occ, progress=lambda s, n, *rest, k=k: progress(
            k * n + s, len(classes) * n, *rest)).numpy() for k, cls in enumerate(classes)]

    kept = jobs.run(f"occlusion-{model_key}-{image_key}-{classes}-{occ}", occlusion_job, "Run occlusion")
    if kept and kept["result"] is not None:
        draw("occlusion", kept["result"])
    else:
        cells["occlusion"][0].info("Run occlusion below the matrix to fill this row.")

    st.markdown("**How the score drops as the window slides through a point**")
    point_col, curve_col = st.columns([1, 2])
    with point_col:
        st.caption("Click the picture (or type a point): the window slides along that row.")
        px, py = widgets.point_picker(lambda x, y: view_of.crosshair(image, x, y, occ["window"]), image.size,
                                      "occ-point")
    centres, probs = view_of.occlusion_curve(model, model_key, picture, image_key, first, py, occ["window"],
                                             occ["stride"])
    curve_col.plotly_chart(view_of.curve_figure(centres, probs, px, labels[first]), key="occ-curve")

if panels:
    st.download_button("Download all panels (ZIP, with the raw maps as .npy)", view_of.zip_bytes(panels, arrays),
                       file_name="attribution.zip", mime="application/zip", on_click="ignore")

st.header("Can the maps be trusted?")
st.caption("Sanity check (Adebayo et al. 2018): re-initialise the network's weights from the top, one stage at a "
           "time, on a copy. A map that does not change while the network forgets what it learned shows the "
           "picture's edges, not the network's reasons.")
chosen = st.multiselect("Methods to check", [m for m in attribution.METHODS if m != "occlusion"],
                        default=["saliency", "guided_backprop", "gradcam"], format_func=view_of.method_name,
                        key="attr-sanity")
check = jobs.run(f"sanity-{model_key}-{image_key}-{first}-{chosen}", lambda progress: trust.randomisation_check(
    model, x, first, chosen, progress, **{m: params[m] for m in chosen if m in params}), "Run the sanity check")
if check and check["result"] is not None and check["result"].maps:
    st.plotly_chart(view_of.correlation_figure(check["result"]), key="sanity-plot")
    strip = view_of.filmstrip(check["result"])
    st.image(strip, caption="One row per method, one column per step: " + ", ".join(check["result"].steps))
    widgets.download_png(strip, "sanity-check.png", "Download the filmstrip")

st.caption("Deletion curve: remove pixels (paint them the mean colour) in the order each map ranks them. The faster "
           f"the probability of {labels[first]} falls, the more faithful the map: a lower area is better.")
ranked = {m: arrays[file_of(m, first)] for m in attribution.METHODS if file_of(m, first) in arrays}
curves = jobs.run(f"deletion-{model_key}-{image_key}-{first}-{sorted(ranked)}", lambda progress: trust.deletion_curves(
    model, x, first, ranked, progress=progress), "Draw the deletion curves")
if curves and curves["result"]:
    st.plotly_chart(view_of.deletion_figure(curves["result"], labels[first]), key="deletion-plot")
