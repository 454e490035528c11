"""The CNN visualisation app: the page table and the sidebar every page shares.

The pages live in app_pages/, not pages/: Streamlit treats a folder named pages/ beside the
entry script as an old-style page list and may run a page without this script (and so
without its sidebar), e.g. on a first visit straight to a page's address.
"""
import streamlit as st

from ui import sidebar

st.set_page_config(page_title="Seeing what a CNN has learned", layout="wide")

PAGES = [
    st.Page("app_pages/predict.py", title="Predict", default=True),
    st.Page("app_pages/filters.py", title="First-layer filters"),
    st.Page("app_pages/activations.py", title="Activation maps"),
]

page = st.navigation(PAGES)
sidebar.show()
page.run()
