"""Small Streamlit pieces the pages share: a clickable tile grid and PNG downloads."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from vislib import render


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
    fig = go.Figure(go.Image(z=np.asarray(sheet), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", text=labels, hovertemplate="%{text}<extra></extra>",
                             marker=dict(size=tile_px * 0.9, symbol="square", opacity=0.01)))
    fig.update_layout(margin=dict(l=0, r=0, t=0, b=0), height=max(120, int(sheet.height * 1.05)),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      showlegend=False, dragmode=False, clickmode="event+select")
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"{key}-grid",
                            config={"displayModeBar": False})
    points = event.selection.points if event and event.selection else []
    clicked = points[0]["point_index"] if points else None
    if clicked is not None and st.session_state.get(f"{key}-clicked") != clicked:
        st.session_state[f"{key}-clicked"] = clicked
        st.session_state[f"{key}-pick"] = clicked + 1
    if st.session_state.get(f"{key}-pick", 1) > len(tiles):
        st.session_state[f"{key}-pick"] = 1
    pick = st.number_input(f"Selected (1 to {len(tiles)}; or click a tile)", 1, len(tiles), key=f"{key}-pick")
    return int(pick) - 1
