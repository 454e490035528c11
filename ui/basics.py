"""The anatomy page's pieces: the layer table, the stage chart, the receptive field growing layer
by layer on the person's picture, and the zoo compared (accuracy against cost)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import ImageDraw
from plotly.subplots import make_subplots

from ui import cached, jobs, sidebar, widgets
from vislib import anatomy as anat
from vislib import models, runtime

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"


@st.cache_data(max_entries=32, show_spinner="Measuring the network...")
def rows(_model, model_key: str) -> list[dict]:
    return anat.anatomy(_model)


def totals_line(model, layers: list[dict]) -> None:
    t = anat.totals(layers)
    st.markdown(f"**{t['params']:,} parameters** and **{t['macs']:,} multiply-adds** for one picture of "
                f"{model.input_size} x {model.input_size} px, in {t['layers']} layers ({t['weighted_layers']} "
                "with weights).")


def table(layers: list[dict], model_key: str) -> None:
    only = st.toggle("Only layers with weights", value=True, key=f"anatomy-weighted-{model_key}")
    frame = pd.DataFrame([{"layer": r["name"], "kind": r["kind"],
                           "output": " x ".join(str(s) for s in r["output_shape"]), "parameters": r["params"],
                           "multiply-adds": r["macs"], "stride": r["stride"], "receptive field": r["receptive_field"]}
                          for r in layers if r["params"] or not only])
    st.dataframe(frame, hide_index=True, height=320)
    st.download_button("Download the table (CSV)", frame.to_csv(index=False).encode(), "anatomy.csv", "text/csv",
                       on_click="ignore")


def stage_chart(layers: list[dict]) -> None:
    parts = anat.stages(layers)
    names = [f"{s['stage']}" + (f" ({s['size'][0]}x{s['size'][1]})" if s["size"] else "") for s in parts]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("parameters", "multiply-adds per picture"))
    fig.add_trace(go.Bar(x=names, y=[s["params"] for s in parts], name="parameters"), 1, 1)
    fig.add_trace(go.Bar(x=names, y=[s["macs"] for s in parts], name="multiply-adds"), 1, 2)
    fig.update_layout(height=320, showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, key="anatomy-stages")
    st.caption("A stage is the run of layers working at one resolution. Weights pile up where channels are many "
               "(the late stages and the classifier); multiply-adds where output cells times channels are many, "
               "usually the early and middle stages.")


def receptive_field(model, model_key, picture, image_key, layers: list[dict]) -> None:
    spatial = [r for r in layers if r["stride"] is not None and r["kind"] in
               ("conv", "depthwise conv", "pointwise conv", "pool")]
    if not spatial:
        st.info("This network has no layers with a grid to draw.")
        return
    names = [r["name"] for r in spatial]
    name = st.select_slider("Grow layer by layer", names, value=names[min(len(names) - 1, len(names) // 3)],
                            key=f"anatomy-rf-{model_key}")
    upto = names.index(name)
    view = cached.network_view(model, model_key, picture, image_key).convert("RGB")
    draw = ImageDraw.Draw(view)
    size = view.width
    for r in spatial[:upto]:  # the fields of the layers before, thin and grey
        box = anat.field_box(r, size)
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=(200, 200, 200), width=1)
    row = spatial[upto]
    x0, y0, x1, y1 = anat.field_box(row, size)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=(255, 40, 40), width=3)
    left, right = st.columns([1, 1])
    left.image(view, width="stretch", caption=f"{row['name']}: the centre cell sees {x1 - x0} x {y1 - y0} px")
    share = min(1.0, (row["receptive_field"] / size) ** 2)
    right.markdown(f"Layer **{row['name']}** ({row['kind']}, {upto + 1} of {len(spatial)}), output "
                   f"{' x '.join(str(s) for s in row['output_shape'])}.\n\n"
                   f"One cell stands for **{row['stride']} x {row['stride']}** input pixels (stride) and sees "
                   f"**{row['receptive_field']} x {row['receptive_field']}** of them (receptive field: about "
                   f"{share:.0%} of the picture). Each k x k layer adds (k - 1) x stride-so-far pixels to the field, "
                   "so fields grow slowly until the strides have multiplied, then fast.\n\n"
                   "Where branches meet (a residual sum, an inception concatenation), the widest branch counts.")
    with right:
        widgets.download_png(view, f"receptive-field-{row['name']}.png", "Download this picture")


def _ready_models() -> list[str]:
    # ImageNet networks only: fashion_cnn answers a different question (10 kinds of clothes).
    return [n for n in models.list_models() if n != models.FASHION_MODEL and models.availability(n).state == "ready"]


def zoo(model_key: str) -> None:
    ready = _ready_models()
    folder = st.text_input("Labelled pictures (file names start with the WordNet id)", str(SAMPLES),
                           key="anatomy-zoo-folder")
    limit = st.number_input("Pictures per network", 10, 1000, 50, 10, key="anatomy-zoo-limit",
                            help="More pictures: a surer accuracy, a longer wait (about 0.2 s a picture on a CPU).")
    st.caption(f"Networks available now: {', '.join(ready) or 'none'}. Those without weights on this machine "
               "cannot be measured.")

    # Kept in the session as each network is measured: Stop reruns the page, and the bubbles measured
    # so far stay on the chart.
    measured: list[dict] = st.session_state.setdefault("anatomy-zoo-measured", [])

    def job(progress):
        labelled = anat.imagenet_truth(folder)[: int(limit)]
        measured.clear()
        for i, name in enumerate(ready):
            model = sidebar.zoo_model(name)
            part = runtime.within(progress, i * len(labelled), len(ready) * len(labelled))
            measured.append(anat.zoo_point(model, labelled, progress=part))
            if measured[-1]["n"] < len(labelled):
                break  # stopped
        return list(measured)

    try:
        kept = jobs.run("anatomy-zoo", job, label="Measure the zoo")
    except ValueError as err:
        st.error(str(err))
        return
    points = (kept or {}).get("result") or (measured if kept and kept["stopped"] else None)
    if not points:
        st.info("Press the button to measure each available network's top-1 accuracy on these pictures.")
        return
    fig = go.Figure(go.Scatter(
        x=[p["macs"] / 1e9 for p in points], y=[p["top1"] for p in points], text=[p["model"] for p in points],
        mode="markers+text", textposition="top center",
        marker=dict(size=[p["params"] for p in points], sizemode="area", sizemin=6,
                    sizeref=max(p["params"] for p in points) / 60 ** 2, opacity=0.6),
        hovertemplate="%{text}<br>%{x:.2f} G multiply-adds<br>top-1 %{y:.1%}<extra></extra>"))
    fig.update_layout(xaxis_title="multiply-adds per picture (G)", yaxis_title="top-1 accuracy", height=420,
                      yaxis_tickformat=".0%", margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(fig, key="anatomy-zoo-chart")
    frame = pd.DataFrame([{"network": p["model"], "top-1": round(p["top1"], 4), "pictures": p["n"],
                           "multiply-adds": p["macs"], "parameters": p["params"]} for p in points])
    st.dataframe(frame, hide_index=True)
    st.download_button("Download the comparison (CSV)", frame.to_csv(index=False).encode(), "zoo.csv", "text/csv",
                       on_click="ignore")
