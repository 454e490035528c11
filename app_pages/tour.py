import streamlit as st

from ui import sidebar, tour

model, model_key, picture, image_key = sidebar.current()
index = tour.current_index()
step = tour.STEPS[index]
st.title("Guided tour")
on_stage = tour.presenter()
if not on_stage:
    st.caption("The lecture in its order, one technique a step: a few sentences to read aloud, the paper's figure "
               "it reproduces, and a demo on the sidebar's picture. The arrow keys move between steps; the address "
               "keeps the step, so you can prepare one tab per step before class.")
tour.navigation(index)
name = tour.preset(model)
tour.step_view(step, index, model, model_key, picture, image_key, name)
