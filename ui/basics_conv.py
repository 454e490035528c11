"""The convolution-arithmetic page's pieces: the inputs with presets, the formulas filled in, the
first-layer filter sliding over the person's picture, and fully connected against convolutional."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image, ImageDraw

from ui import widgets
from vislib import activations, render
from vislib.basics import arithmetic as ar

FIELDS = [("size", "Input size (px)", 1, 1024), ("channels", "Input channels", 1, 2048), ("kernel", "Kernel size", 1, 31),
          ("stride", "Stride", 1, 16), ("padding", "Padding", 0, 32), ("dilation", "Dilation", 1, 8),
          ("filters", "Filters", 1, 4096)]
OWN = "(your own numbers)"


def _apply_preset() -> None:
    chosen = ar.PRESETS.get(st.session_state["conv-preset"])
    if chosen:
        for name, *_ in FIELDS:
            st.session_state[f"conv-{name}"] = chosen[name]


def inputs() -> dict:
    """The preset picker and the seven numbers; returns them as a dict."""
    first = next(iter(ar.PRESETS.values()))
    for name, *_ in FIELDS:
        st.session_state.setdefault(f"conv-{name}", first[name])
    preset = st.selectbox("Preset", [*ar.PRESETS, OWN], key="conv-preset", on_change=_apply_preset)
    cols = st.columns(len(FIELDS))
    values = {name: int(col.number_input(label, low, high, key=f"conv-{name}"))
              for col, (name, label, low, high) in zip(cols, FIELDS)}
    if preset in ar.PRESETS and any(values[n] != ar.PRESETS[preset][n] for n, *_ in FIELDS):
        st.caption(f"Changed from the preset {preset}.")
    elif preset in ar.PRESETS:
        st.info(ar.PRESETS[preset]["note"])
    return values


def formulas(values: dict):
    try:
        result = ar.conv_arithmetic(**values)
    except ValueError as err:
        st.error(str(err))
        return None
    # The same layer built by torch on the meta device (no memory, no arithmetic): its shape must agree.
    conv = torch.nn.Conv2d(values["channels"], values["filters"], values["kernel"], values["stride"],
                           values["padding"], values["dilation"], device="meta")
    real = tuple(conv(torch.empty(1, values["channels"], values["size"], values["size"], device="meta")).shape)
    st.markdown(f"**Output size** = ⌊(n + 2p - d(k - 1) - 1) / s⌋ + 1 = {result.formulas['output']}, so the output "
                f"is **{result.out} x {result.out} x {result.filters}** (torch's nn.Conv2d gives {list(real)}: "
                "batch, channels, height, width).\n\n"
                f"**Parameters** = filters · (k·k·C_in + 1 bias) = {result.formulas['params']}\n\n"
                f"**Multiply-adds** = out·out·filters · k·k·C_in = {result.formulas['macs']}")
    if result.leftover:
        many = result.leftover > 1
        st.caption(f"The last {f'{result.leftover} pixels' if many else 'pixel'} of each row and column "
                   f"{'are' if many else 'is'} never under the kernel: the stride does not divide the padded input "
                   "evenly.")
    return result


def _small_input(model, picture, size: int) -> np.ndarray:
    """The person's picture at `size` px, normalised as the network expects (grey for grey networks)."""
    x = model.preprocess(picture)
    x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="area")[0]
    weights = activations.first_layer_weights(model)
    return (x.mean(0, keepdim=True) if weights.shape[1] == 1 else x).numpy()


def sliding(model, model_key, picture, values: dict) -> None:
    weights = activations.first_layer_weights(model)
    count, _, k, _ = weights.shape
    left, right = st.columns(2)
    which = left.number_input(f"Filter of {model.name}'s first layer (1 to {count})", 1, count, 1,
                              key=f"slide-filter-{model_key}") - 1
    size = right.select_slider("Picture size for the demonstration (px)", [16, 24, 32, 48, 64], 32, key="slide-size")
    stride, padding, dilation = values["stride"], values["padding"], values["dilation"]
    x = _small_input(model, picture, size)
    try:
        out, corners = ar.sliding(x, weights[which], stride, padding, dilation)
    except ValueError as err:
        st.error(f"{err} (The filter is {k} x {k}: {model.name}'s own kernel size.)")
        return
    n = len(corners)
    at = st.slider(f"Position of the filter (1 to {n}, row by row)", 1, n, min(n, max(1, n // 2)),
                   key=f"slide-at-{model_key}-{size}-{stride}-{padding}-{dilation}")
    scale = 256 // (size + 2 * padding) or 1
    pixels = np.pad(render.normalise(x.transpose(1, 2, 0)), ((padding, padding), (padding, padding), (0, 0)),
                    constant_values=0.5)
    shown = Image.fromarray((pixels.squeeze() * 255).astype("uint8")).convert("RGB")
    shown = shown.resize((shown.width * scale, shown.height * scale), Image.Resampling.NEAREST)
    r0, c0 = corners[at - 1]
    span = dilation * (k - 1) + 1
    draw = ImageDraw.Draw(shown)
    draw.rectangle((c0 * scale, r0 * scale, (c0 + span) * scale - 1, (r0 + span) * scale - 1), outline=(255, 40, 40),
                   width=2)
    grown = np.full(out.size, np.nan)
    grown[:at] = out.ravel()[:at]
    lim = float(np.abs(out).max()) or 1.0
    tile = np.asarray(render.colorize(np.nan_to_num(grown, nan=0.0).reshape(out.shape), "RdBu_r", -lim, lim))
    tile = np.where(np.isnan(grown).reshape(out.shape)[..., None], 235, tile).astype("uint8")
    result = Image.fromarray(tile).resize((256, 256), Image.Resampling.NEAREST)
    a, b = st.columns(2)
    a.image(shown, caption=f"{size} x {size} px input{f', padded by {padding}' if padding else ''}; the "
                           f"{k} x {k} filter{f' dilated by {dilation}' if dilation > 1 else ''} at position {at}")
    b.image(result, caption=f"The output, {out.shape[0]} x {out.shape[1]}: {at} of {n} values computed "
                            "(red: the picture matches the filter, blue: its opposite)")
    widgets.download_png(result, f"conv-output-{at}.png", "Download the output so far")


def fully_connected(values: dict) -> None:
    c = st.columns(3)
    size = c[0].number_input("Grey picture size (px)", 8, 256, 28, key="fc-size")
    hidden = c[1].number_input("Hidden units of the fully connected layer", 1, 4096, 32, key="fc-hidden")
    filters = c[2].number_input("Filters of the 3 x 3 convolution", 1, 512, 32, key="fc-filters")
    fc = ar.fc_vs_conv(size=size, hidden=hidden, filters=filters)
    st.markdown(f"A fully connected layer joins every pixel to every unit: {fc['fc_formula']} weights "
                f"(with a 10-class output, {fc['fc_total_formula']}; the course notes' two-layer example needed "
                f"28,326). A 3 x 3 convolution shares its weights across positions: {fc['conv_formula']}, "
                f"**{fc['ratio']:,.0f} times fewer**, and the same number for a picture of any size.")
    g = ar.bottleneck()
    st.markdown(f"**GoogLeNet's 1 x 1 convolutions.** Inception 3a's 5 x 5 branch on a 28 x 28 x 192 input: "
                f"straight to 32 filters needs {g['direct_formula']} weights; reducing to 16 channels with a 1 x 1 "
                f"convolution first needs {g['reduced_formula']}, **{g['saving']:.1f} times fewer** "
                f"({g['direct_macs']:,} against {g['reduced_macs']:,} multiply-adds). GoogLeNet's two side "
                "classifiers feed gradient into the middle of the network while it trains and are thrown away "
                "afterwards: torchvision's GoogLeNet here is built without them.")
    fig = go.Figure(go.Bar(x=["fully connected", "3 x 3 conv", "5 x 5 direct", "1 x 1 then 5 x 5"],
                           y=[fc["fc_first"], fc["conv"], g["direct_params"], g["reduced_params"]],
                           marker_color=["#d62728", "#2ca02c", "#d62728", "#2ca02c"]))
    top = np.log10(max(fc["fc_first"], g["direct_params"])) + 0.3
    fig.update_layout(yaxis_type="log", yaxis_range=[1, top], yaxis_title="weights (log scale)", height=300,
                      margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(fig, key="fc-chart")
