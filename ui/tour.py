"""The guided tour: the lecture's steps one at a time, with a demo on the sidebar's picture each.

The step and presenter mode live in the URL (?step=gradcam&presenter=1), so a teacher can prepare
one tab per step; the arrow keys move between steps (Streamlit's own button shortcuts, which
ignore keys typed into a text box). Presenter mode hides the sidebar and enlarges the type for a
projector; the sidebar still runs, hidden, so the picture and network stay what they were.
"""
from __future__ import annotations

import streamlit as st

import vislib

from ui import jobs, presets, widgets
from ui.tour_demos import Shown, run as run_demo
from ui.tour_steps import SLUGS, STEPS, Step, index_of

PRESENTER_CSS = """<style>
section[data-testid="stSidebar"], div[data-testid="stSidebarCollapsedControl"],
button[data-testid="stExpandSidebarButton"] {display: none !important;}
.stMainBlockContainer {max-width: 100% !important; padding-left: 3rem; padding-right: 3rem;}
.stMainBlockContainer p, .stMainBlockContainer li {font-size: 1.7rem !important; line-height: 1.45;}
.stMainBlockContainer h1 {font-size: 3.4rem !important;}
.stMainBlockContainer h2, .stMainBlockContainer h3 {font-size: 2.4rem !important;}
</style>"""


def current_index() -> int:
    return index_of(st.query_params.get("step"))


def go(index: int) -> None:
    """Move to step `index` (clamped): the URL changes, so a reload or a bookmark stays here."""
    st.query_params["step"] = SLUGS[max(0, min(len(STEPS) - 1, index))]


def presenter() -> bool:
    """The presenter-mode switch, read from and written to the URL (?presenter=1)."""
    on = st.query_params.get("presenter") == "1"
    if st.session_state.get("tour-presenter") is None or st.session_state.get("tour-presenter-url") != on:
        st.session_state["tour-presenter"] = on  # the URL wins on arrival and when it changes
    st.session_state["tour-presenter-url"] = on

    def switched():
        if st.session_state["tour-presenter"]:
            st.query_params["presenter"] = "1"
        else:
            st.query_params.pop("presenter", None)
        st.session_state["tour-presenter-url"] = st.session_state["tour-presenter"]
    wanted = st.toggle("Presenter mode (large type, no sidebar)", key="tour-presenter", on_change=switched)
    if wanted:
        st.html(PRESENTER_CSS)
    return wanted


def navigation(index: int) -> None:
    """Previous / Next (the arrow keys too) and a list of all steps to jump to."""
    back, label, ahead = st.columns([1, 4, 1], vertical_alignment="center")
    back.button("Previous", key="tour-previous", shortcut="Left", disabled=index == 0,
                on_click=go, args=(index - 1,), icon=":material/arrow_back:")
    ahead.button("Next", key="tour-next", shortcut="Right", disabled=index == len(STEPS) - 1,
                 on_click=go, args=(index + 1,), icon=":material/arrow_forward:", type="primary")

    def jumped():
        go(st.session_state["tour-jump"])
    st.session_state["tour-jump"] = index
    label.selectbox("Step", range(len(STEPS)), key="tour-jump", on_change=jumped, label_visibility="collapsed",
                    format_func=lambda i: f"Step {i + 1} of {len(STEPS)}: {STEPS[i].title}")


def preset(model) -> str:
    """Classroom or paper settings for the demos: the URL's, else the device's default."""
    names = {"classroom": presets.CLASSROOM, "paper": presets.PAPER}
    asked = names.get(st.query_params.get("preset", ""))
    if st.session_state.get("tour-preset") is None:
        st.session_state["tour-preset"] = asked or presets.default_name(model)

    def chosen():
        if st.session_state.get("tour-preset"):
            st.query_params["preset"] = presets.SHORT[st.session_state["tour-preset"]]
    name = st.segmented_control("Demo settings", list(presets.NAMES), key="tour-preset", on_change=chosen,
                                help="Classroom: each demo finishes in about 20 s on a laptop's CPU. "
                                     "Paper: the published settings (minutes on a CPU; use a GPU).")
    return name or presets.default_name(model)


def show_result(shown: Shown, step: Step) -> None:
    cols = st.columns(len(shown.images)) if shown.images else []
    for i, (col, (image, caption)) in enumerate(zip(cols, shown.images)):
        with col:
            st.image(image, caption=caption, width="stretch" if image.width >= 200 else max(image.width, 160))
            widgets.download_png(image, f"tour-{step.slug}-{i + 1}.png", key=f"tour-dl-{step.slug}-{i}")
    for line in shown.lines:
        st.write(line)


def step_view(step: Step, index: int, model, model_key: str, picture, image_key: str, name: str) -> None:
    st.header(f"{index + 1}. {step.title}")
    st.markdown(step.text)
    st.caption(f"Figure: {step.figure}")
    key = f"tour:{step.slug}:{model_key}:{image_key}:{name}"
    try:
        kept = jobs.run(key, lambda progress: run_demo(step, model, picture, name, progress), label="Run the demo")
    except (ValueError, vislib.ModelError) as err:  # e.g. a layer or class this network lacks
        st.error(str(err))
        kept = None
    shown = kept["result"] if kept else None
    if isinstance(shown, Shown):
        show_result(shown, step)
        if kept.get("seconds"):
            st.caption(f"Took {kept['seconds']:.1f} s with the {name} settings.")
    params = shown.link if isinstance(shown, Shown) else {}
    if not model_key.startswith("custom:") and params:
        params = {"model": model_key, **params}
    st.page_link(step.page, label=f"Open the full page: {step.title}", icon=":material/open_in_new:",
                 query_params=params or None)
