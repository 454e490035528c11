"""Classroom presets: each page's "classroom (fast)" and "paper" settings, one click away, kept in the URL.

A teacher has a laptop and a lesson's worth of minutes; a paper's settings (200 steps at 224 px)
take minutes on a CPU. So every page whose work takes time has two rows here: `CLASSROOM` (finishes
in about 20 s on a 2-core CPU) and `PAPER` (the paper's settings, the default on a GPU).

How a page uses it (three lines, all optional beyond the first):

    from ui import presets
    presets.picker("deepdream")              # before the page's widgets: a "Settings" choice
    ...the page's widgets, with the keys named in TABLES["deepdream"]...
    presets.remember("deepdream")            # after them: the current values go into the URL

- `picker(page)` shows a segmented choice ("classroom (fast)" / "paper"); choosing one writes the
  row's values into `st.session_state` under the page's widget keys (so the widgets show them on
  the rerun) and the choice into the URL (`?preset=classroom`). On a first visit it also reads
  the URL: a shared link or a reload with `?preset=paper&dream-steps=20` gets exactly those
  settings back.
- `remember(page)` writes the page's current widget values into the URL (`?dream-steps=20`), so
  the teacher's last choices survive a reload and travel with a copied link.
- `values(page, name)` gives a row as the keyword arguments of the vislib function it feeds
  (`steps=`, `size=`...): the tour runs its demos with them, without drawing any widget.
- `default_name(model)`: "paper" on a GPU, "classroom (fast)" on a CPU.

A new page joins by adding one `Table` to `TABLES`: `keys` maps each setting (named as the vislib
function's argument) to the page's widget key, and the two rows give the values. A key may hold
`{model_key}`; pass `model_key=` to `picker` / `remember` to fill it. Values must be ones the
widget accepts (an option of a select_slider, a step of a slider).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

CLASSROOM = "classroom (fast)"
PAPER = "paper"
NAMES = (CLASSROOM, PAPER)
SHORT = {CLASSROOM: "classroom", PAPER: "paper"}  # the URL's spelling


@dataclass(frozen=True)
class Table:
    """One page's presets: setting name -> widget key, and the two rows of values."""
    keys: dict[str, str]
    rows: dict[str, dict[str, object]]
    note: str = ""  # what the paper row follows, shown under the picker
    extra: dict[str, dict[str, object]] = field(default_factory=dict)  # settings with no widget (tour only)


# Steps and sizes: "paper" follows each paper (or its reference code); "classroom" is measured with
# bench/tour.py to finish in <= 20 s on 2 CPU cores with efficientnet_lite0.
TABLES: dict[str, Table] = {
    "class_images": Table(
        {"steps": "classvis-steps", "size": "classvis-size"},
        {CLASSROOM: {"steps": 40, "size": 128}, PAPER: {"steps": 200, "size": 224}},
        "Simonyan et al. 2014 / Olah et al. 2017: a few hundred steps at the network's input size."),
    "fooling": Table(
        {"eps": "fool-eps", "max_steps": "fool-steps"},
        {CLASSROOM: {"eps": 4, "max_steps": 30}, PAPER: {"eps": 4, "max_steps": 100}},
        "Szegedy et al. 2014 / Goodfellow et al. 2015: a change of a few grey levels per pixel."),
    "deepdream": Table(
        {"octaves": "dream-octaves", "steps_per_octave": "dream-steps", "size": "dream-size",
         "octave_scale": "dream-scale"},
        {CLASSROOM: {"octaves": 3, "steps_per_octave": 5, "size": 192, "octave_scale": 1.4},
         PAPER: {"octaves": 4, "steps_per_octave": 10, "size": 512, "octave_scale": 1.4}},
        "Mordvintsev et al. 2015's notebook: 4 octaves of 10 steps, scale 1.4."),
    "inversion": Table(
        {"steps": "invert-steps", "tv": "invert-tv"},
        {CLASSROOM: {"steps": 40, "tv": 5e-4}, PAPER: {"steps": 200, "tv": 5e-4}},
        "Mahendran and Vedaldi 2015: a few hundred steps with a total-variation prior."),
    "texture": Table(
        {"size": "tex-size", "steps": "tex-steps"},
        {CLASSROOM: {"size": 96, "steps": 20}, PAPER: {"size": 256, "steps": 200}},
        "Gatys et al. 2015: L-BFGS, a few hundred iterations at 256 px."),
    "style": Table(
        {"size": "sty-size", "steps": "sty-steps"},
        {CLASSROOM: {"size": 96, "steps": 20}, PAPER: {"size": 256, "steps": 200}},
        "Gatys et al. 2016: L-BFGS, a few hundred iterations at 256 px and more."),
    "patches": Table(
        {"k": "patch-k"},
        {CLASSROOM: {"k": 9}, PAPER: {"k": 9}},
        "Zeiler and Fergus 2014, Fig. 2: the top 9 patches of each unit."),
    "feature_map": Table(
        {"perplexity": "map-perplexity"},
        {CLASSROOM: {"perplexity": 15}, PAPER: {"perplexity": 30}},
        "van der Maaten and Hinton 2008: perplexity 30."),
}


def _table(page: str) -> Table:
    if page not in TABLES:
        raise KeyError(f"No presets for page {page!r}; pages with presets: {', '.join(TABLES)}.")
    return TABLES[page]


def default_name(model) -> str:
    """The paper's settings on a GPU, the classroom's on a CPU."""
    return PAPER if model is not None and model.device.type != "cpu" else CLASSROOM


def values(page: str, name: str) -> dict[str, object]:
    """A preset row as keyword arguments (setting name -> value), including settings with no widget."""
    table = _table(page)
    if name not in table.rows:
        raise ValueError(f"Unknown preset {name!r}; choose one of: {', '.join(table.rows)}.")
    return {**table.rows[name], **table.extra.get(name, {})}


def widget_values(page: str, name: str, **fmt) -> dict[str, object]:
    """A preset row as widget key -> value (what `apply` writes into the session)."""
    table = _table(page)
    return {table.keys[setting].format(**fmt): value for setting, value in table.rows[name].items()}


def apply(page: str, name: str, **fmt) -> None:
    """Write a preset's values into the page's widget keys (call before the widgets, or in a callback)."""
    for key, value in widget_values(page, name, **fmt).items():
        st.session_state[key] = value
    st.query_params["preset"] = SHORT[name]


def _cast(text: str, like: object) -> object:
    """A URL value read as the type of the preset's value (the URL holds only strings)."""
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(float(text))
    if isinstance(like, float):
        return float(text)
    return text


def from_url(page: str, **fmt) -> None:
    """On arrival (a reload, a shared link): the URL's preset, then its single values, into the session.

    Only keys the session does not hold yet: once the person moves a widget, the widget wins."""
    table = _table(page)
    wanted = {v: k for k, v in SHORT.items()}.get(st.query_params.get("preset", ""))
    seen = f"presets-from-url:{page}"
    if st.session_state.get(seen):
        return
    st.session_state[seen] = True
    if wanted is not None:
        for key, value in widget_values(page, wanted, **fmt).items():
            st.session_state.setdefault(key, value)
        st.session_state.setdefault(f"preset-{page}", wanted)
    like = table.rows[CLASSROOM]
    for setting, key in table.keys.items():
        key = key.format(**fmt)
        if key in st.query_params:
            try:
                st.session_state[key] = _cast(st.query_params[key], like[setting])
            except ValueError:
                pass  # a hand-edited address: keep the page's own default


def picker(page: str, **fmt) -> str | None:
    """The "Settings" choice: classroom (fast) or paper; returns the chosen name (None: the page's own).

    Choosing one writes its values into the page's widgets and the URL. Call before those widgets."""
    from_url(page, **fmt)
    table = _table(page)
    key = f"preset-{page}"
    choice = st.segmented_control(
        "Settings", list(NAMES), key=key, on_change=lambda: st.session_state.get(key) and apply(
            page, st.session_state[key], **fmt),
        help="Classroom: finishes in about 20 s on a laptop's CPU. Paper: the published settings (use a GPU).")
    if table.note:
        st.caption(f"Paper: {table.note}")
    return choice


def remember(page: str, **fmt) -> None:
    """The page's current settings into the URL, so a reload or a copied link keeps them."""
    table = _table(page)
    for key in table.keys.values():
        key = key.format(**fmt)
        if key in st.session_state:
            value = st.session_state[key]
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if st.query_params.get(key) != text:
                st.query_params[key] = text
