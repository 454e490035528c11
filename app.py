"""The CNN visualisation app: the page table and the sidebar every page shares.

The pages live in app_pages/, not pages/: Streamlit treats a folder named pages/ beside the
entry script as an old-style page list and may run a page without this script (and so
without its sidebar), e.g. on a first visit straight to a page's address.
"""
# Imported before any session runs: plotly finds pandas in sys.modules without waiting for its
# import to finish, and two sessions on a fresh server saw it half imported ("no attribute 'Series'").
import pandas  # noqa: F401
import plotly.express  # noqa: F401
import streamlit as st

from ui import queue, sessions, sidebar

sessions.start_reaper()
sessions.freeze_imports()  # torch's and plotly's objects: out of the post-rerun gc.collect's walk

st.set_page_config(page_title="Seeing what a CNN has learned", layout="wide")

# In the lecture's order: look inside, ask which pixels mattered, look across a dataset, then
# make pictures by gradient ascent.
PAGES = {
    "Inside the network": [
        st.Page("app_pages/predict.py", title="Predict", default=True),
        st.Page("app_pages/tour.py", title="Guided tour"),
        st.Page("app_pages/live.py", title="Live camera"),
        st.Page("app_pages/filters.py", title="First-layer filters"),
        st.Page("app_pages/activations.py", title="Activation maps"),
    ],
    "Which pixels mattered": [
        st.Page("app_pages/attribution.py", title="Attribution"),
        st.Page("app_pages/leaderboard.py", title="Which map to trust"),
    ],
    "Across a dataset": [
        st.Page("app_pages/neighbours.py", title="Nearest neighbours"),
        st.Page("app_pages/feature_map.py", title="Feature map"),
        st.Page("app_pages/patches.py", title="Maximally activating patches"),
    ],
    "One unit": [
        st.Page("app_pages/unit.py", title="What one unit detects"),
        st.Page("app_pages/atlas.py", title="Atlas of a network"),
    ],
    "Making pictures": [
        st.Page("app_pages/class_images.py", title="Class images"),
        st.Page("app_pages/fooling.py", title="Fooling"),
        st.Page("app_pages/deepdream.py", title="DeepDream"),
        st.Page("app_pages/inversion.py", title="Inversion"),
        st.Page("app_pages/texture_style.py", title="Texture and style"),
    ],
    "The basics": [
        st.Page("app_pages/anatomy.py", title="Network anatomy"),
        st.Page("app_pages/conv_arithmetic.py", title="Convolution arithmetic"),
        st.Page("app_pages/upsampling.py", title="Upsampling"),
        st.Page("app_pages/depth.py", title="Why depth needs shortcuts"),
    ],
}

page = st.navigation(PAGES, expanded=True)  # every page in view: no "View more" to find
with queue.reported():
    sidebar.show()
    page.run()
