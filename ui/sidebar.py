"""The sidebar every page shares: model picker, image picker (a sample, a file or a camera snapshot), device line.

It leaves the chosen Model and picture in `st.session_state` for the page that runs after it;
pages read them through `current()`. Networks of the zoo (and every torchvision and timm
architecture with its library's weights) are cached for every session at once
(`st.cache_resource`), so they are never changed in place; a person's own network - a
checkpoint or a whole-network file - belongs to their session only.
"""
from __future__ import annotations

import hashlib

import streamlit as st

import vislib
from vislib import images, models, runtime

CUSTOM = "your network"


@st.cache_resource(max_entries=4, show_spinner="Loading the network...")
def zoo_model(name: str) -> vislib.Model:
    return vislib.load_model(name)


@st.cache_data(ttl=600, show_spinner=False)
def _availability() -> dict[str, models.Availability]:
    return {name: models.availability(name) for name in models.list_models()}


@st.cache_data(ttl=600, show_spinner=False)
def _one_availability(name: str) -> models.Availability:
    """A generated family's availability, asked only once it is chosen (not for 1,400 names at start)."""
    return models.availability(name)


@st.cache_data(show_spinner=False)
def _generated() -> list[str]:
    """Every torchvision and timm architecture after the zoo's: a list of names, read once."""
    return models.architectures()[len(models.list_models()):]


@st.cache_data(max_entries=16, show_spinner=False)
def _sample(name: str):
    return images.sample_images()[name]()


def custom_choice(model) -> str:
    """The picker's entry for the session's own network (the name it shows is the value itself)."""
    return f"{CUSTOM}: {model.name}"


_MARK = {"ready": "", "download": " (downloads)", "unavailable": " (not available)"}


MORE = "another torchvision or timm network..."


def _follow_link(names: list[str]) -> None:
    """A link with ?model=NAME (a unit's page, say) picks that network once, on arrival; after
    that the picker is the person's again."""
    wanted = st.query_params.get("model")
    if wanted != st.session_state.get("linked_model"):
        st.session_state["linked_model"] = wanted
        if wanted in names:
            st.session_state["model_name"] = wanted
        elif wanted in _generated():
            st.session_state["model_name"], st.session_state["generated_name"] = MORE, wanted


def _model_picker():
    status = _availability()
    _follow_link(list(status))
    own = st.session_state.get("custom_model")
    names = ([custom_choice(own)] if own else []) + list(status) + [MORE]
    if own and st.session_state.pop("pick_own", False):  # just loaded: chosen before the picker is drawn
        st.session_state["model_name"] = custom_choice(own)
    choice = st.selectbox("Network", names, key="model_name",
                          format_func=lambda n: n + _MARK[status[n].state] if n in status else n,
                          help="The app's own networks; the last entry opens every torchvision and timm "
                               "architecture with its library's ImageNet weights.")
    if choice == MORE:
        # A second, searchable list: its ~1,450 names are sent to the browser only when asked for,
        # so the app's first page and the picker open as fast as with the twelve alone.
        generated = _generated()
        choice = st.selectbox(f"Architecture ({len(generated):,} from torchvision and timm)", generated, index=None,
                              key="generated_name", placeholder="Type to search, e.g. convnext_tiny or timm:resnet26d")
        if choice is None:
            return None, None
    with_form = st.toggle("Use your own network", key="own_open",
                          help="Your checkpoint of a torchvision or timm architecture, or a whole-network file "
                               "(.pt2, ONNX) of your own design.")
    if with_form:
        _own_network_form()
    if own and choice == custom_choice(own):
        return st.session_state["custom_model"], f"custom:{st.session_state['custom_key']}"
    state = status.get(choice) or _one_availability(choice)
    if state.state != "ready":
        st.caption(state.detail)
    try:
        return zoo_model(choice), choice
    except vislib.ModelError as err:
        st.error(str(err))
        return None, None


_CHECKPOINT, _WHOLE = "A checkpoint of a known architecture", "A whole-network file (.pt2, ONNX)"


def _numbers(text: str, what: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        values = ()
    if len(values) != 3:
        raise vislib.ModelError(f"The {what} takes three numbers (red, green, blue), e.g. 0.485, 0.456, 0.406.")
    return values


def _own_network_form() -> None:
    kind = st.radio("What do you have?", [_CHECKPOINT, _WHOLE], key="own_kind",
                    help="A checkpoint holds weights only: say which torchvision or timm architecture they are "
                         "for. A whole-network file (torch.export's .pt2, or ONNX) holds the architecture too.")
    with st.form("own_network", border=False):
        if kind == _CHECKPOINT:
            weights = st.file_uploader("Weights (.safetensors, or a state_dict saved with torch.save)",
                                       type=["safetensors", "pt", "pth", "bin"])
            arch = st.selectbox("Architecture", models.architectures(), index=None, placeholder="Type to search...",
                                help="torchvision's names as they are (convnext_tiny), timm's as timm:NAME.")
        else:
            weights = st.file_uploader("Network file (.pt2 from torch.export.save, or .onnx)", type=["pt2", "onnx"])
            size = st.number_input("Input size (pixels)", 8, 4096, 224)
            mean = st.text_input("Mean (R, G, B)", "0.485, 0.456, 0.406")
            std = st.text_input("Std (R, G, B)", "0.229, 0.224, 0.225")
        labels = st.file_uploader("Class names, one a line (optional)", type=["txt"], max_upload_size=1)
        if not st.form_submit_button("Load network"):
            return
    try:
        if weights is None:
            raise vislib.ModelError("Choose a file first.")
        if kind == _CHECKPOINT:
            if not arch:
                raise vislib.ModelError("Choose the architecture the checkpoint was trained with.")
            model = vislib.load_model(weights, arch=arch, labels=labels)
        else:
            model = vislib.load_model(weights, labels=labels, input_size=int(size), mean=_numbers(mean, "mean"),
                                      std=_numbers(std, "std"))
    except vislib.ModelError as err:
        st.error(str(err))
        return
    st.session_state["custom_model"] = model
    st.session_state["custom_key"] = hashlib.sha1(weights.getvalue()).hexdigest()[:12]
    st.session_state["pick_own"] = True  # a drawn widget's value cannot be set in the same run
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


def current(needs: tuple[str, ...] = ()):
    """(model, model_key, picture, image_key) chosen in the sidebar; stops the page if no model, or
    with one sentence if the network lacks what the page `needs` ("layers", "first_conv", "classifier")."""
    model, model_key, picture, image_key = st.session_state["current"]
    if model is None:
        st.info("Pick a network that loads in the sidebar.")
        st.stop()
    try:
        model.require(*needs)
    except vislib.ModelError as err:
        st.info(f"{err} The other pages work on it.")
        st.stop()
    return model, model_key, picture, image_key
