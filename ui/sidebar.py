"""The sidebar every page shares: model picker, image picker (a sample, a file or a camera snapshot), device line.

It leaves the chosen Model and picture in `st.session_state` for the page that runs after it;
pages read them through `current()`. Networks of the zoo are cached for every session at once
(`st.cache_resource`), so they are never changed in place; a person's own checkpoint belongs
to their session only.
"""
from __future__ import annotations

import hashlib

import streamlit as st

import vislib
from vislib import images, models, runtime

CUSTOM = "your checkpoint"


@st.cache_resource(max_entries=4, show_spinner="Loading the network...")
def zoo_model(name: str) -> vislib.Model:
    return vislib.load_model(name)


@st.cache_data(ttl=600, show_spinner=False)
def _availability() -> dict[str, models.Availability]:
    return {name: models.availability(name) for name in models.list_models()}


@st.cache_data(max_entries=16, show_spinner=False)
def _sample(name: str):
    return images.sample_images()[name]()


_MARK = {"ready": "", "download": " (downloads)", "unavailable": " (not available)"}


def _follow_link(names: list[str]) -> None:
    """A link with ?model=NAME (a unit's page, say) picks that network once, on arrival; after
    that the picker is the person's again."""
    wanted = st.query_params.get("model")
    if wanted != st.session_state.get("linked_model"):
        st.session_state["linked_model"] = wanted
        if wanted in names:
            st.session_state["model_name"] = wanted


def _model_picker():
    status = _availability()
    _follow_link(list(status))
    names = list(status) + ([CUSTOM] if st.session_state.get("custom_model") else [])
    choice = st.selectbox("Network", names, key="model_name",
                          format_func=lambda n: n + _MARK[status[n].state] if n in status else
                          f"{CUSTOM}: {st.session_state['custom_model'].name}")
    with st.expander("Use your own checkpoint"):
        _checkpoint_form()
    if choice == CUSTOM:
        return st.session_state["custom_model"], f"custom:{st.session_state['custom_key']}"
    if status[choice].state != "ready":
        st.caption(status[choice].detail)
    try:
        return zoo_model(choice), choice
    except vislib.ModelError as err:
        st.error(str(err))
        return None, None


def _checkpoint_form() -> None:
    with st.form("checkpoint", border=False):
        weights = st.file_uploader("Weights (.safetensors, or a state_dict saved with torch.save)",
                                   type=["safetensors", "pt", "pth", "bin"])
        arch = st.selectbox("Architecture", models.architectures())
        labels = st.file_uploader("Class names, one a line (optional)", type=["txt"], max_upload_size=1)
        if not st.form_submit_button("Load checkpoint"):
            return
    if weights is None:
        st.error("Choose a weights file first.")
        return
    try:
        model = vislib.load_model(weights, arch=arch, labels=labels)
    except vislib.ModelError as err:
        st.error(str(err))
        return
    st.session_state["custom_model"] = model
    st.session_state["custom_key"] = hashlib.sha1(weights.getvalue()).hexdigest()[:12]
    st.session_state["model_name"] = CUSTOM
    st.rerun()


def _decoded(kind: str, upload):
    """(picture, problem) of an uploaded file or camera snapshot, decoded once per file."""
    cached = st.session_state.get(f"{kind}_cache")
    if cached is None or cached[0] != upload.file_id:
        try:
            cached = (upload.file_id, images.load_image(upload), None)
        except images.ImageError as err:
            cached = (upload.file_id, None, str(err))
        st.session_state[f"{kind}_cache"] = cached
    return cached[1], cached[2]


def _camera():
    """A snapshot from the browser's camera, when the person turns it on (the camera's preview and the
    browser's permission question appear only then). Returns (picture, image_key) or None."""
    if not st.toggle("Camera", key="camera_on", help="Take a picture with this computer's camera; every page "
                     "then uses it. Browsers allow the camera only over HTTPS or on localhost."):
        return None
    shot = st.camera_input("Take a picture", key="camera_shot")
    if shot is None:
        st.caption("No picture yet (or no camera: the browser says which above). Using the picture below meanwhile.")
        return None
    picture, problem = _decoded("camera", shot)
    if picture is None:
        st.error(f"The camera's picture: {problem}")
        return None
    return picture, f"camera:{shot.file_id}"


def _image_picker():
    # The camera's snapshot wins, but the other pickers are still drawn so that they keep their choices.
    snapshot = _camera()
    upload = st.file_uploader("Your image", type=images.SUPPORTED_TYPES, key="upload",
                              max_upload_size=images.MAX_BYTES >> 20,
                              help="A photo of your own; it stays in this session only.")
    if upload is not None:
        picture, problem = _decoded("upload", upload)
        if picture is not None:
            return snapshot or (picture, f"upload:{upload.file_id}")
        st.error(f"{upload.name}: {problem} Showing a sample picture meanwhile.")
    name = st.selectbox("Sample picture", list(images.sample_images()), key="sample_name")
    return snapshot or (_sample(name), f"sample:{name}")


def show() -> None:
    with st.sidebar:
        model, model_key = _model_picker()
        picture, image_key = _image_picker()
        if picture is not None:
            st.image(picture, width="stretch")
        st.caption(f"Running on {runtime.describe(model.device if model else runtime.default_device())}")
    st.session_state["current"] = (model, model_key, picture, image_key)


def current():
    """(model, model_key, picture, image_key) chosen in the sidebar; stops the page if no model."""
    model, model_key, picture, image_key = st.session_state["current"]
    if model is None:
        st.info("Pick a network that loads in the sidebar.")
        st.stop()
    return model, model_key, picture, image_key
