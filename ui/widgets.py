"""Small Streamlit pieces the pages share: a clickable tile grid, a clickable picture, PNG downloads."""
from __future__ import annotations

from typing import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from vislib import render


def _clicked_marker(picture: Image.Image, xs, ys, labels, marker_px: float, key: str, height: int | None = None):
    """Show the picture with an invisible marker at each (x, y); the index of the clicked one, or None.

    Markers because Streamlit reports clicks on plotly markers but not on images."""
    fig = go.Figure(go.Image(z=np.asarray(picture), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", text=labels, hovertemplate="%{text}<extra></extra>",
                             marker=dict(size=marker_px, symbol="square", opacity=0.01)))
    fig.update_layout(margin=dict(l=0, r=0, t=0, b=0), height=height or max(120, int(picture.height * 1.05)),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      showlegend=False, dragmode=False, clickmode="event+select")
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=key, config={"displayModeBar": False})
    points = event.selection.points if event and event.selection else []
    return points[0]["point_index"] if points else None


def point_picker(picture_at: Callable[[int, int], Image.Image], size: tuple[int, int], key: str,
                 every: int = 8) -> tuple[int, int]:
    """A point of a picture, picked by a click on it (to the nearest `every` pixels) or by two
    number boxes; starts at the centre. `picture_at(x, y)` draws the picture marked at the point.
    Returns (x, y)."""
    w, h = size
    grid = [(x, y) for y in range(every // 2, h, every) for x in range(every // 2, w, every)]
    # The click of the last rerun is in the chart's state before the chart is drawn again, so the
    # picture can already show the new point.
    event = st.session_state.get(f"{key}-picture")
    points = event.selection.points if event and event.selection else []
    clicked = points[0]["point_index"] if points else None
    if clicked is not None and st.session_state.get(f"{key}-clicked") != clicked:
        st.session_state[f"{key}-clicked"] = clicked
        st.session_state[f"{key}-x"], st.session_state[f"{key}-y"] = grid[clicked]
    x, y = st.session_state.get(f"{key}-x", w // 2), st.session_state.get(f"{key}-y", h // 2)
    _clicked_marker(picture_at(x, y), [gx for gx, _ in grid], [gy for _, gy in grid],
                    [f"x {gx}, y {gy}" for gx, gy in grid], every, f"{key}-picture", height=max(160, int(h * 1.6)))
    left, right = st.columns(2)
    x = left.number_input("Point: x", 0, w - 1, w // 2, key=f"{key}-x")
    y = right.number_input("Point: y", 0, h - 1, h // 2, key=f"{key}-y")
    return int(x), int(y)


def download_png(image: Image.Image, file_name: str, label: str = "Download PNG", key: str | None = None) -> None:
    st.download_button(label, render.png_bytes(image), file_name=file_name, mime="image/png",
                       key=key or f"dl-{file_name}", on_click="ignore")


def tile_picker(tiles: list[Image.Image], labels: list[str], key: str, cols: int = 8, tile_px: int = 64) -> int:
    """Show tiles as one grid; a click on a tile (or the number box under it) picks it.

    Returns the picked position in `tiles`. The grid is one picture with an invisible marker
    on each tile, because Streamlit reports clicks on plotly markers but not on images.
    """
    pad = 2
    sheet = render.grid([t.resize((tile_px, tile_px), Image.Resampling.NEAREST) for t in tiles], cols, pad)
    step = tile_px + pad
    xs = [(i % cols) * step + tile_px / 2 for i in range(len(tiles))]
    ys = [(i // cols) * step + tile_px / 2 for i in range(len(tiles))]
    clicked = _clicked_marker(sheet, xs, ys, labels, tile_px * 0.9, f"{key}-grid")
    if clicked is not None and st.session_state.get(f"{key}-clicked") != clicked:
        st.session_state[f"{key}-clicked"] = clicked
        st.session_state[f"{key}-pick"] = clicked + 1
    if st.session_state.get(f"{key}-pick", 1) > len(tiles):
        st.session_state[f"{key}-pick"] = 1
    pick = st.number_input(f"Selected (1 to {len(tiles)}; or click a tile)", 1, len(tiles), key=f"{key}-pick")
    return int(pick) - 1
