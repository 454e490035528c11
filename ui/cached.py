"""The pages' calls into vislib, cached per (network, picture) so that a rerun is instant.

Keys are the sidebar's model and image keys; the Model and picture themselves are passed
with a leading underscore, which tells Streamlit not to hash them.
"""
import streamlit as st

from vislib import activations


@st.cache_data(max_entries=64, show_spinner=False)
def network_view(_model, model_key, _picture, image_key):
    return _model.to_image(_model.preprocess(_picture))


@st.cache_data(max_entries=64, show_spinner=False)
def top5(_model, model_key, _picture, image_key):
    return _model.top_k(_picture, 5)


@st.cache_data(max_entries=32, show_spinner="Running the network...")
def maps(_model, model_key, _picture, image_key, layer):
    return activations.activation_maps(_model, _picture, layer).numpy()


@st.cache_data(max_entries=32, show_spinner=False)
def filter_responses(_model, model_key, _picture, image_key):
    return activations.filter_responses(_model, _picture).numpy()
