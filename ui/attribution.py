"""The Attribution page's pieces: names and defaults from the registry, cached maps, the two-picture
panels, the ZIP, the trust plots."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from vislib import attribution, render, trust


def method_name(method: str) -> str:
    """A method as the pickers show it: its group's heading and its label, from the registry."""
    info = attribution.METHODS[method]
    return f"{attribution.GROUPS[info.group][0]}: {info.label}"


def default(method: str, param: str):
    """The registry's default (the paper's) of one parameter of a method."""
    return attribution.METHODS[method].param(param).default


def network_input(model, picture):
    return model.preprocess(picture)[None]


@st.cache_data(max_entries=256, show_spinner=False)
def attribution_map(_model, model_key, _picture, image_key, method: str, target: int, params: tuple) -> np.ndarray:
    return attribution.attribute(_model, network_input(_model, _picture), method, target, **dict(params)).numpy()


@st.cache_data(max_entries=64, show_spinner="Sliding the window along the row...")
def occlusion_curve(_model, model_key, _picture, image_key, target: int, row: int, window: int, step: int):
    return attribution.occlusion_curve(_model, network_input(_model, _picture), target, row, window, step)


def panel(view: Image.Image, amap: np.ndarray, alpha: float, vmin: float, vmax: float,
          overlay_cmap: str, raw_cmap: str) -> Image.Image:
    """The map over the picture (left) and the raw map (right), as one picture."""
    over = render.overlay(view, amap, alpha, overlay_cmap, vmin, vmax)
    raw = render.colorize(amap, raw_cmap, vmin, vmax).resize(view.size, Image.Resampling.NEAREST)
    return render.grid([over, raw], 2, pad=4)


def zip_bytes(pictures: dict[str, Image.Image], arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, image in pictures.items():
            z.writestr(f"{name}.png", render.png_bytes(image))
        for name, values in arrays.items():
            raw = io.BytesIO()
            np.save(raw, values)
            z.writestr(f"{name}.npy", raw.getvalue())
    return buffer.getvalue()


def crosshair(view: Image.Image, col: int, row: int, window: int) -> Image.Image:
    """The picture with the occluding window drawn at (row, col), its centre."""
    from PIL import ImageDraw
    out = view.copy()
    half = window // 2
    ImageDraw.Draw(out).rectangle([col - half, row - half, col + half, row + half], outline=(255, 0, 0), width=2)
    return out


def curve_figure(centres: list[int], probs: list[float], col: int, label: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=centres, y=probs, mode="lines+markers", name=label))
    fig.add_vline(x=col, line_dash="dot", line_color="red")
    fig.update_layout(xaxis_title="window centre (x, pixels)", yaxis_title=f"probability of {label}",
                      height=300, margin=dict(l=10, r=10, t=10, b=10))
    return fig


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


def deletion_figure(curves: dict[str, trust.DeletionCurve], label: str) -> go.Figure:
    fig = go.Figure([go.Scatter(x=c.fractions, y=c.scores, mode="lines",
                                name=f"{attribution.METHODS[m].label} (area {c.auc:.3f})")
                     for m, c in curves.items()])
    fig.update_layout(xaxis_title="fraction of pixels removed, most important first",
                      yaxis_title=f"probability of {label}", height=360, margin=dict(l=10, r=10, t=10, b=10))
    return fig
