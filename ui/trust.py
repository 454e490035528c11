"""The Attribution page's trust section: the sanity check, the faithfulness scores of the maps on
screen with their deletion and insertion curves, and the cut-out (segmentation from a map)."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui import jobs, widgets
from vislib import attribution, render, trust
from vislib.attribution.segment import cut_out as cut_picture, segment
from vislib.runtime import report, within


def correlation_figure(check: trust.RandomisationCheck) -> go.Figure:
    fig = go.Figure([go.Scatter(x=check.steps, y=rho, mode="lines+markers", name=attribution.METHODS[m].label)
                     for m, rho in check.correlation.items()])
    fig.update_layout(xaxis_title="re-initialised down to (cumulative, from the top)",
                      yaxis_title="rank correlation with the original map", yaxis_range=[-0.2, 1.05],
                      height=360, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def filmstrip(check: trust.RandomisationCheck, tile: int = 96) -> Image.Image:
    """One row per method, one map per step, each on its own scale."""
    rows = [render.colorize(np.abs(m.numpy())).resize((tile, tile)) for maps in check.maps.values() for m in maps]
    return render.grid(rows, len(check.steps))


def sanity(model, x, target: int, params: dict, quick: list[str], key: str) -> None:
    st.caption("Sanity check (Adebayo et al. 2018): re-initialise the network's weights from the top, one stage at "
               "a time, on a copy. A map that does not change while the network forgets what it learned shows the "
               "picture's edges, not the network's reasons.")
    chosen = st.multiselect("Methods to check", quick, default=[m for m in ("saliency", "guided_backprop", "gradcam")
                                                                if m in quick],
                            format_func=lambda m: attribution.METHODS[m].label, key="attr-sanity")
    check = jobs.run(f"sanity-{key}-{target}-{chosen}", lambda progress: trust.randomisation_check(
        model, x, target, chosen, progress, **{m: params[m] for m in chosen if m in params}), "Run the sanity check")
    if check and check["result"] is not None and check["result"].maps:
        st.plotly_chart(correlation_figure(check["result"]), key="sanity-plot")
        strip = filmstrip(check["result"])
        st.image(strip, caption="One row per method, one column per step: " + ", ".join(check["result"].steps))
        widgets.download_png(strip, "sanity-check.png", "Download the filmstrip")


def curve_figure(curves: dict[str, trust.Curve], kind: str, label: str) -> go.Figure:
    fig = go.Figure([go.Scatter(x=c.fractions, y=c.scores, mode="lines",
                                name=f"{attribution.METHODS[m].label} (area {c.auc:.3f})") for m, c in curves.items()])
    fig.update_layout(xaxis_title=f"fraction of pixels {'removed' if kind == 'deletion' else 'put back'}, "
                                  "most important first",
                      yaxis_title=f"probability of {label}", title=kind.capitalize(), height=360,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(font=dict(size=10)))
    return fig


def score_maps(model, x, target: int, maps: dict[str, np.ndarray], metrics: list[str], progress) -> dict:
    """{"curves": {kind: {method: Curve}}, "table": DataFrame (one row per method, a column per
    metric)}: the curves drawn once and their areas reused as the deletion and insertion scores."""
    others = [m for m in metrics if m not in trust.KINDS]
    total = 2 * len(maps) * 21 + len(maps) * len(others)
    curves = trust.curves(model, x, target, maps, trust.KINDS, 20, within(progress, 0, total))
    rows = {m: {k: curves[k][m].auc for k in trust.KINDS if k in metrics} for m in maps}
    done = 2 * len(maps) * 21
    for method, amap in maps.items():
        if others:
            rows[method].update(trust.faithfulness(model, x, target, amap, others))
        done += len(others)
        report(progress, done, total)
    table = pd.DataFrame.from_dict(rows, orient="index")[metrics]
    table.index = [attribution.METHODS[m].label for m in table.index]
    return {"curves": curves, "table": table}


def styled(table: pd.DataFrame):
    """The table with each metric's best method in bold on green, the metric's direction in its name."""
    named = table.rename(columns={m: f"{trust.METRICS[m].label} {'↑' if trust.METRICS[m].higher_is_better else '↓'}"
                                  for m in table.columns})

    def best(column: pd.Series, metric: str):
        pick = column.max() if trust.METRICS[metric].higher_is_better else column.min()
        return ["font-weight: bold; background-color: #c8f0c8" if v == pick else "" for v in column]
    styler = named.style.format("{:.3f}")
    for metric, shown in zip(table.columns, named.columns):
        styler = styler.apply(best, subset=[shown], metric=metric)
    return styler


def scores(model, x, target: int, label: str, maps: dict[str, np.ndarray], key: str) -> None:
    st.subheader("How faithful is each map?")
    st.caption(f"For the maps above (class {label}): deletion (Petsiuk et al. 2018) removes pixels in each map's "
               f"order (paints them the mean colour): the faster the probability of {label} falls, the more faithful "
               "the map; insertion puts them back into a blurred copy; ROAD (Rong et al. 2022) fills them from their "
               "neighbours instead; average drop and increase in confidence (Chattopadhay et al. 2018) keep only "
               "what the map shows. ↑: higher is better, ↓: lower; the best of each column is marked. A method that does no better "
               "than the Random or Edges baselines tells nothing about the network.")
    metrics = st.multiselect("Scores", list(trust.METRICS), default=list(trust.METRICS),
                             format_func=lambda m: trust.METRICS[m].label, key="attr-metrics",
                             help="ROAD is the slowest score: about a second a map on a CPU (8 imputed copies)")
    if not maps or not metrics:
        st.info("Show some maps and pick some scores to compare them.")
        return
    digest = hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in maps.values())).hexdigest()[:12]
    kept = jobs.run(f"scores-{key}-{target}-{sorted(maps)}-{digest}-{metrics}",
                    lambda progress: score_maps(model, x, target, maps, metrics, progress), "Score the maps")
    if not kept or kept["result"] is None:
        return
    table, curves = kept["result"]["table"], kept["result"]["curves"]
    st.dataframe(styled(table), key="attr-scores")
    st.download_button("Download the scores (CSV)", table.to_csv(index_label="method"), file_name="scores.csv",
                       mime="text/csv", on_click="ignore")
    left, right = st.columns(2)
    left.plotly_chart(curve_figure(curves["deletion"], "deletion", label), key="deletion-plot")
    right.plotly_chart(curve_figure(curves["insertion"], "insertion", label), key="insertion-plot")


@st.cache_data(max_entries=32, show_spinner="Cutting the object out...")
def _segment(_model, model_key, _x, image_key, target: int, method: str, params: tuple) -> np.ndarray:
    return segment(_model, _x, target, method, **dict(params))


def cut_out(model, model_key, x, image_key, target: int, label: str, methods: list[str], params: dict) -> None:
    st.subheader("Cut the object out")
    st.caption("A map says roughly where the class is; GrabCut (Rother et al. 2004) follows the picture's own "
               "colours from there to the object's outline.")
    if not methods:
        return
    method = st.selectbox("From the map of", methods, index=methods.index("gradcam") if "gradcam" in methods else 0,
                          format_func=lambda m: attribution.METHODS[m].label, key="attr-segment-method")
    try:
        mask = _segment(model, model_key, x, image_key, target, method, tuple(params.get(method, {}).items()))
    except ValueError as err:
        st.error(str(err))
        return
    picture = cut_picture(model, x, mask)
    left, right = st.columns(2)
    mask_image = Image.fromarray((mask * 255).astype(np.uint8))
    left.image(mask_image, caption=f"the mask: {mask.mean():.0%} of the picture")
    right.image(picture, caption=f"{label}, cut out")
    widgets.download_png(picture, f"cut-out-{label}.png".replace(" ", "_"), "Download the cut-out (PNG)")
    widgets.download_png(mask_image, "mask.png", "Download the mask (PNG)")
