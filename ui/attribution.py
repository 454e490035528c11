"""The Attribution page's pieces: the method picker and settings from the registry, the matrix of
panels (one row per method, one column per class), quick maps cached, slow maps made by a job
that can be stopped, the ZIP, the occlusion curve. The trust section is in ui/trust.py."""
from __future__ import annotations

import inspect
import io
import zipfile

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui import jobs, widgets
from vislib import attribution, render

# The lecture's seven methods: shown unless the person picks others (together about a second on a CPU).
LECTURE = ["saliency", "guided_backprop", "smoothgrad", "integrated_gradients", "gradcam", "guided_gradcam",
           "occlusion"]
KEPT_SLOW_MAPS = 64  # slow maps a session keeps (a 224 px map is 200 kB)


def method_name(method: str) -> str:
    """A method as the pickers show it: its group's heading and its label, from the registry."""
    info = attribution.METHODS[method]
    return f"{attribution.GROUPS[info.group][0]}: {info.label}"


def default(method: str, param: str):
    """The registry's default (the paper's) of one parameter of a method."""
    return attribution.METHODS[method].param(param).default


def slow(method: str) -> bool:
    """Methods that report progress (many passes: occlusion, RISE, Score-CAM, ...) run as a job."""
    return "progress" in inspect.signature(attribution.METHODS[method].function).parameters


def spoken(label: str) -> str:
    """A label inside a sentence: "Occlusion" -> "occlusion", "RISE" and "Score-CAM" as they are."""
    return label[0].lower() + label[1:] if label[1:].islower() else label


def network_input(model, picture):
    return model.preprocess(picture)[None]


def pick_methods() -> list[str]:
    """The methods to show, picked by group; the lecture's seven unless changed."""
    return st.multiselect("Methods to show (grouped: gradients, CAMs, perturbation, relevance, baselines)",
                          [m for ms in attribution.grouped().values() for m in ms],
                          default=[m for m in LECTURE if m in attribution.METHODS], format_func=method_name,
                          key="attr-methods")


def settings(model, model_key) -> dict:
    """The settings expander; returns {method: params} for the methods that take them."""
    with st.expander("Settings (the papers' defaults)"):
        a, b, c = st.columns(3)
        layers = [info.name for info in model.layers() if info.size[0] * info.size[1] > 1]
        if layers:
            layer = a.selectbox("CAM layer (Grad-CAM and the other CAMs)", layers,
                                index=layers.index(attribution.gradcam_layer(model)), key=f"attr-layer-{model_key}")
        else:  # a transformer's tokens: each CAM says so in its row, the other methods work
            layer = None
            a.caption("No CAM layer: this network keeps no map of the picture's layout.")
        baseline = b.radio("Integrated gradients starts from", attribution.BASELINES, horizontal=True,
                           index=attribution.BASELINES.index(default("integrated_gradients", "baseline")))
        samples = c.slider("SmoothGrad samples", 4, 32, default("smoothgrad", "samples"), 4)
        window = a.slider("Occlusion window (px)", 8, 64, default("occlusion", "window"), 4)
        stride = b.slider("Occlusion stride (px)", 4, 32, default("occlusion", "stride"), 4)
        steps = c.slider("Integrated gradients steps", 8, 64, default("integrated_gradients", "steps"), 8)
        params = {m: {"layer": layer} for m, info in attribution.METHODS.items() if any(
            p.name == "layer" for p in info.params)}
        if "rise" in attribution.METHODS:
            params["rise"] = {"masks": a.slider("RISE masks", 500, 8000, default("rise", "masks"), 500)}
    params.update({"smoothgrad": {"samples": samples}, "integrated_gradients": {"baseline": baseline, "steps": steps},
                   "occlusion": {"window": min(window, model.input_size), "stride": min(stride, window)}})
    return params


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


class Matrix:
    """The panels on screen: a header of classes, then per group its methods, one row each, with a
    placeholder per class that `draw` fills. `arrays` keeps every drawn map by file name."""

    def __init__(self, image: Image.Image, labels: list[str], classes: list[int], shown: list[str], alpha: float,
                 shared: bool):
        self.image, self.labels, self.classes, self.alpha, self.shared = image, labels, classes, alpha, shared
        self.panels: dict[str, Image.Image] = {}
        self.arrays: dict[str, np.ndarray] = {}
        self.maps: dict[str, list[np.ndarray]] = {}  # method -> one map per class, as drawn
        header = st.columns([1, *[3] * len(classes)])
        for col, cls in zip(header[1:], classes):
            col.markdown(f"**{labels[cls]}**")
        self.cells = {}
        for group, methods in attribution.grouped(shown).items():
            st.markdown("##### {}: {}".format(*attribution.GROUPS[group]))
            for method in methods:
                row = st.columns([1, *[3] * len(classes)])
                row[0].markdown(f"**{attribution.METHODS[method].label}**")
                row[0].caption(attribution.METHODS[method].explanation)
                self.cells[method] = [col.empty() for col in row[1:]]

    def file(self, method: str, cls: int) -> str:
        return f"{method}-{cls}-{self.labels[cls]}".replace(" ", "_").replace("/", "_")

    def draw(self, method: str, maps: list[np.ndarray]) -> None:
        scales = ([attribution.colour_scale(maps)] * len(maps) if self.shared
                  else [attribution.colour_scale([m]) for m in maps])
        self.maps[method] = maps
        for cell, cls, amap, (vmin, vmax, over, raw) in zip(self.cells[method], self.classes, maps, scales):
            picture_of = panel(self.image, amap, self.alpha, vmin, vmax, over, raw)
            file = self.file(method, cls)
            self.panels[file], self.arrays[file] = picture_of, amap
            with cell.container():
                st.image(picture_of, caption=f"range {vmin:.3g} to {vmax:.3g}")
                widgets.download_png(picture_of, f"{file}.png", "Download", key=f"dl-{file}")

    def fill_quick(self, model, model_key, picture, image_key, params: dict) -> None:
        """Every shown method that is not slow, fast ones (one pass) first; a person's mistake
        (a network a method cannot explain) is one sentence in the row."""
        quick = sorted((m for m in self.cells if not slow(m)), key=lambda m: not attribution.METHODS[m].fast)
        for method in quick:
            try:
                maps = [attribution_map(model, model_key, picture, image_key, method, cls,
                                        tuple(params.get(method, {}).items())) for cls in self.classes]
            except ValueError as err:
                self.cells[method][0].error(str(err))
                continue
            self.draw(method, maps)

    def fill_slow(self, model, model_key, x, image_key, params: dict) -> list[str]:
        """The shown slow methods: drawn from the session's store when made before, else made by one
        job (a Run button, progress, previews, Stop) that stores each map as it is finished, so a
        stopped run keeps the finished ones. Returns the slow methods shown."""
        methods = [m for m in self.cells if slow(m)]
        if not methods:
            return []
        store = st.session_state.setdefault("attr-slow-maps", {})
        key_of = lambda m, cls: (model_key, image_key, m, cls, tuple(params.get(m, {}).items()))  # noqa: E731
        missing = [(m, cls) for m in methods for cls in self.classes if key_of(m, cls) not in store]
        names = [spoken(attribution.METHODS[m].label) for m in methods]
        label = "Run " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])
        st.subheader(", ".join(attribution.METHODS[m].label for m in methods))
        st.caption("Slow: the network runs many times for each map (once per window, mask or channel). Each map "
                   "appears when finished; Stop keeps those.")

        def job(progress):
            for k, (m, cls) in enumerate(missing):
                part = lambda s, n, *rest, k=k, **info: progress(k * n + s, len(missing) * n, *rest)  # noqa: E731
                store[key_of(m, cls)] = attribution.attribute(model, x, m, cls, progress=part,
                                                              **params.get(m, {})).numpy()
                while len(store) > KEPT_SLOW_MAPS:
                    store.pop(next(iter(store)))
            return True
        if missing:
            jobs.run(f"slow-{model_key}-{image_key}-{missing}", job, label)
        for m in methods:
            if all(key_of(m, cls) in store for cls in self.classes):
                self.draw(m, [store[key_of(m, cls)] for cls in self.classes])
            else:
                self.cells[m][0].info(f"{label} below the matrix to fill this row.")
        return methods

    def zip_download(self) -> None:
        if self.panels:
            st.download_button("Download all panels (ZIP, with the raw maps as .npy)",
                               zip_bytes(self.panels, self.arrays), file_name="attribution.zip",
                               mime="application/zip", on_click="ignore")


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


def occlusion_row(model, model_key, picture, image_key, image, target: int, label: str, occ: dict) -> None:
    """How the score drops as the window slides through a point the person picks."""
    st.markdown("**How the score drops as the occlusion window slides through a point**")
    point_col, curve_col = st.columns([1, 2])
    with point_col:
        st.caption("Click the picture (or type a point): the window slides along that row.")
        px, py = widgets.point_picker(lambda x, y: crosshair(image, x, y, occ["window"]), image.size, "occ-point")
    centres, probs = occlusion_curve(model, model_key, picture, image_key, target, py, occ["window"], occ["stride"])
    fig = go.Figure(go.Scatter(x=centres, y=probs, mode="lines+markers", name=label))
    fig.add_vline(x=px, line_dash="dot", line_color="red")
    fig.update_layout(xaxis_title="window centre (x, pixels)", yaxis_title=f"probability of {label}",
                      height=300, margin=dict(l=10, r=10, t=10, b=10))
    curve_col.plotly_chart(fig, key="occ-curve")
