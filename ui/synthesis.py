"""What the synthesis pages share: a run that keeps preview frames, the loss curve, PNG and GIF downloads."""
from __future__ import annotations

import io

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui import jobs, widgets

MAX_FRAMES = 120


def on_gpu(model) -> bool:
    return model.device.type != "cpu"


def cpu_note(model) -> None:
    if not on_gpu(model):
        st.caption("Running on the CPU: the defaults are smaller than the papers' (fewer steps, smaller "
                   "images) so that a run takes about a minute. On a GPU they are the papers' settings.")


def run(key: str, work, label: str = "Run"):
    """`ui.jobs.run` that also keeps every preview as a frame of the progress animation.

    The frames live in the session (not in the job's result) so that a stopped run keeps them too.
    """
    frames_key = f"frames:{key}"

    def job(progress):
        frames = st.session_state[frames_key] = []

        def collect(step, total, preview=None, **info):
            if preview is not None and len(frames) < MAX_FRAMES:
                frames.append(preview.copy())
            return progress(step, total, preview, **info)
        return work(collect)
    kept = jobs.run(key, job, label)
    if kept is not None:
        kept["frames"] = st.session_state.get(frames_key, [])
    return kept


def gif_bytes(frames: list[Image.Image], ms_per_frame: int = 150) -> bytes:
    buffer = io.BytesIO()
    first, *rest = [f.convert("RGB") for f in frames]
    first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=ms_per_frame, loop=0)
    return buffer.getvalue()


def loss_chart(history, title: str = "Loss (lower is better)") -> None:
    points = [(step, info["loss"]) for step, info in history if "loss" in info]
    if not points:
        return
    steps, losses = zip(*points)
    fig = go.Figure(go.Scatter(x=steps, y=losses, mode="lines"))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss", height=260,
                      margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, key=f"loss-{id(history)}")


def result_picture(kept):
    """The finished image, or the last preview of a stopped run."""
    if kept is None:
        return None
    result = kept["result"]
    if isinstance(result, tuple):
        result = result[0]
    return result if result is not None else kept["preview"]


def downloads(kept, picture: Image.Image, stem: str) -> None:
    """PNG of the result and a GIF of its progress."""
    widgets.download_png(picture, f"{stem}.png", "Download PNG", key=f"png-{stem}")
    if kept.get("frames"):
        st.download_button("Download GIF of the progress", gif_bytes(kept["frames"]), file_name=f"{stem}.gif",
                           mime="image/gif", key=f"gif-{stem}", on_click="ignore")


def show(kept, stem: str, caption: str, width: int = 320) -> Image.Image | None:
    """The result with its downloads and loss curve; returns the picture (None before any run)."""
    picture = result_picture(kept)
    if picture is None:
        st.info("Press Run to start; the image updates as it is optimised.")
        return None
    st.image(picture, caption=f"{caption} ({kept['step']} of {kept['total']} steps, {kept['seconds']:.0f} s)",
             width=width)
    downloads(kept, picture, stem)
    loss_chart(kept["history"])
    return picture


def layer_picker(model, key: str, index: int):
    """A layer of the catalogue (its LayerInfo), shown with its kind and channel count."""
    layers = model.layers()
    return st.selectbox("Layer", layers, index=index, key=key,
                        format_func=lambda info: f"{info.name} ({info.kind}, {info.channels} channels)")


def class_picker(model, key: str, default: int) -> int:
    labels = model.labels
    return st.selectbox("Class", range(len(labels)), index=min(default, len(labels) - 1), key=key,
                        format_func=lambda i: f"{i}: {labels[i]}")


def top_table(rows) -> None:
    st.table({"class": [f"{label} ({i})" for i, label, _ in rows], "probability": [f"{p:.3f}" for *_, p in rows]})
