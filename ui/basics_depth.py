"""The depth page's pieces: gradient norms per layer at initialisation, and the training race."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui import jobs
from vislib.basics import depth as dp

COLOURS = {"plain": "#d62728", "residual": "#1f77b4"}


@st.cache_data(max_entries=32, show_spinner="Computing the gradients...")
def norms(layers: int, seed: int) -> dict[str, np.ndarray]:
    return dp.at_initialisation(layers, seed)


def gradient_chart(layers: int, seed: int) -> dict[str, np.ndarray]:
    found = norms(layers, seed)
    fig = go.Figure()
    for kind, values in found.items():
        shown = np.where(values > 0, values, np.nan)  # an exact zero (underflow) has no place on a log axis
        fig.add_trace(go.Scatter(x=np.arange(1, layers + 1), y=shown, mode="lines+markers", name=kind,
                                 line=dict(color=COLOURS[kind])))
    fig.update_layout(yaxis_type="log", xaxis_title="layer (1 = nearest the picture)",
                      yaxis_title="gradient norm of its weights", height=340, margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(fig, key="depth-gradients")
    cols = st.columns(2)
    for col, (kind, values) in zip(cols, found.items()):
        ratio = values[0] / values[-1]
        col.metric(f"{kind}: first layer's gradient / last layer's", f"{ratio:.1e}" if ratio else "0 (underflow)")
    frame = pd.DataFrame({"layer": np.arange(1, layers + 1), **{k: v for k, v in found.items()}})
    st.download_button("Download the gradient norms (CSV)", frame.to_csv(index=False).encode(),
                       f"gradient-norms-{layers}.csv", "text/csv", on_click="ignore")
    return found


def race(layers: int, seed: int) -> None:
    kept = jobs.run(f"depth-race-{layers}-{seed}",
                    lambda progress: dp.train_race(depth=layers, seed=seed, progress=progress),
                    label=f"Train the three networks ({dp.RUNS[0][1]}, {layers} and {layers} layers)")
    if not kept or not kept["result"]:
        st.info("Press the button: 150 steps of 64 Fashion-MNIST pictures each, the same batches for all three "
                "networks, then each is tested on 2,000 pictures it never saw.")
        return
    result = kept["result"]
    fig = go.Figure()
    for run in result["runs"]:
        kind = "residual" if run["residual"] else "plain"
        window = np.convolve(run["loss"], np.ones(10) / 10, mode="valid") if len(run["loss"]) >= 10 else run["loss"]
        fig.add_trace(go.Scatter(y=window, mode="lines", name=run["name"],
                                 line=dict(color=COLOURS[kind], dash="dot" if run["depth"] == dp.RUNS[0][1] else None)))
    fig.update_layout(xaxis_title="training step", yaxis_title="loss (mean of 10 steps)", height=340,
                      margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(fig, key="depth-race-chart")
    frame = pd.DataFrame([{"network": r["name"], "test accuracy": round(r["accuracy"], 3),
                           "last loss (mean of 10)": round(float(np.mean(r["loss"][-10:])), 3) if r["loss"] else None,
                           "seconds": round(r["seconds"], 1)} for r in result["runs"]])
    st.dataframe(frame, hide_index=True)
    st.download_button("Download the results (CSV)", frame.to_csv(index=False).encode(), "depth-race.csv",
                       "text/csv", on_click="ignore")
