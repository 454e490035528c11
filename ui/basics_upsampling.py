"""The upsampling page's pieces: every method on the person's picture, max unpooling with the
positions a real max pooling of the network remembered, and the checkerboard on a constant picture."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from ui import cached, widgets
from vislib import render
from vislib.basics import upsampling as up

SHOWN = 192  # px of every tile on screen (enlarged without smoothing, so pixels stay visible)


def _tile(values: torch.Tensor, lo: float | None = None, hi: float | None = None) -> Image.Image:
    v = values.detach().float()
    if v.shape[0] == 3:
        img = Image.fromarray((render.normalise(v.permute(1, 2, 0).numpy(), lo, hi) * 255).astype("uint8"))
    else:
        img = render.colorize(v[0].numpy(), "gray", lo, hi)
    return img.resize((SHOWN, SHOWN), Image.Resampling.NEAREST)


def _row(tiles: list[tuple[Image.Image, str]]) -> None:
    for col, (img, caption) in zip(st.columns(len(tiles)), tiles):
        col.image(img, caption=caption)


def controls() -> tuple[int, int, int]:
    a, b, c = st.columns(3)
    factor = a.select_slider("Upsampling factor (= stride of the transposed convolution)", [2, 3, 4], 2,
                             key="up-factor")
    kernel = b.slider("Kernel size of the convolutions", 1, 7, 3, key="up-kernel")
    size = c.select_slider("Small picture size (px)", [8, 12, 16, 24, 32], 16, key="up-size")
    return factor, kernel, size


def on_picture(model, model_key, picture, image_key, factor: int, kernel: int, size: int) -> None:
    view = cached.network_view(model, model_key, picture, image_key).convert("RGB").resize((size, size),
                                                                                        Image.Resampling.BOX)
    x = torch.from_numpy(np.asarray(view, dtype=np.float32) / 255).permute(2, 0, 1)
    methods = [m for m in up.METHODS if m != "max unpooling"]
    tiles = [(_tile(x, 0, 1), f"your picture, {size} x {size}")]
    for m in methods:
        y = up.upsample(x, m, factor, kernel)
        tiles.append((_tile(y, 0, 1), f"{m}, {y.shape[1]} x {y.shape[2]}"))
    _row(tiles)
    sheet = render.grid([t for t, _ in tiles], len(tiles))
    widgets.download_png(sheet, "upsampling-picture.png", "Download these pictures")


def max_unpooling(model, model_key, picture, image_key, factor: int) -> None:
    # The first convolution's responses: one convolution, not a whole forward pass, so the page opens at once.
    maps = cached.filter_responses(model, model_key, picture, image_key)
    channel = int(np.argmax(maps.reshape(len(maps), -1).mean(1)))
    a = torch.from_numpy(maps[channel][None].copy())
    # The middle 48 cells at most (a whole multiple of the factor): enough to see single maxima move.
    side = min(a.shape[-1], 48) // factor * factor
    top = (a.shape[-1] - side) // 2
    a = a[:, top:top + side, top:top + side]
    pooled, unpooled, indices = up.max_pool_unpool(a, factor)
    lo, hi = float(a.min()), float(a.max())
    tiles = [(_tile(a, lo, hi), f"{model.first_conv}, channel {channel}: the middle {side} x {side}"),
             (_tile(pooled, lo, hi), f"max pooled {factor} x {factor}: {pooled.shape[-1]} x {pooled.shape[-1]}"),
             (_tile(unpooled, lo, hi), "max unpooled: each value back where its maximum was"),
             (_tile(up.nearest(pooled, factor), lo, hi), "nearest, for comparison"),
             (_tile(up.bed_of_nails(pooled, factor), lo, hi), "bed of nails: always the top-left corner")]
    _row(tiles)
    moved = float((indices % side % factor != 0).float().mean() + (indices // side % factor != 0).float().mean()) / 2
    st.caption(f"The pooling remembered where each maximum was; {moved:.0%} of them (per axis) were not in the top-"
               "left corner where bed of nails would have put them.")


def checkerboard(factor: int, kernel: int) -> None:
    flat = torch.ones(1, 12, 12)
    t = up.transposed(flat, kernel, factor)
    r = up.resize_convolve(flat, factor, kernel)
    t_uneven, r_uneven = up.unevenness(t, kernel), up.unevenness(r, kernel)
    hi = max(float(t.max()), float(r.max()))
    _row([(_tile(flat, 0, hi), "a constant picture, 12 x 12"),
          (_tile(t, 0, hi), f"transposed convolution {kernel} x {kernel}, stride {factor}: unevenness {t_uneven:.2f}"),
          (_tile(r, 0, hi), f"resize, then convolve {kernel} x {kernel}: unevenness {r_uneven:.2f}")])
    verdict = "does not divide" if kernel % factor else "divides"
    st.markdown(f"The stride {factor} **{verdict}** the kernel size {kernel}, so "
                + ("neighbouring output pixels are covered by different numbers of stamps: the checkerboard."
                   if kernel % factor else "every inner output pixel is covered by the same number of stamps: "
                                            "no checkerboard."))
    counts = up.overlap_counts(8, kernel, factor)
    fig = go.Figure(go.Bar(x=list(range(len(counts))), y=counts))
    fig.update_layout(xaxis_title="output position along one side", yaxis_title="stamps that reach it", height=240,
                      margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(fig, key="up-overlaps")
    grid = pd.DataFrame({f"stride {s}": [round(up.unevenness(up.transposed(flat, k, s), k), 2) for k in range(1, 8)]
                         for s in (1, 2, 3, 4)}, index=[f"kernel {k}" for k in range(1, 8)])
    st.caption("Unevenness ((max - min) / mean of the inner pixels) of a transposed convolution of the constant "
               "picture: zero exactly where the stride divides the kernel size.")
    st.dataframe(grid)
