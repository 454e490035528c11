"""The CNN visualisation app: the page table and the sidebar every page shares."""
import streamlit as st

from ui import sidebar

st.set_page_config(page_title="Seeing what a CNN has learned", layout="wide")

PAGES = [
    st.Page("pages/predict.py", title="Predict", default=True),
    st.Page("pages/filters.py", title="First-layer filters"),
    st.Page("pages/activations.py", title="Activation maps"),
]

page = st.navigation(PAGES)
sidebar.show()
page.run()
