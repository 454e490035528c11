import plotly.express as px
import streamlit as st

from ui import cached, sidebar, widgets

model, model_key, picture, image_key = sidebar.current()
st.title("Predict")
st.caption("The network resizes and crops the picture to its input size, then gives a probability "
           "to each of its classes. Every other page explains *why* it answers what it does.")

seen = cached.network_view(model, model_key, picture, image_key)
top = cached.top5(model, model_key, picture, image_key)
left, right = st.columns([1, 2])
with left:
    st.image(seen, caption=f"What the network sees: {model.input_size} x {model.input_size} px",
             width="stretch")
    widgets.download_png(seen, "network-input.png")
with right:
    best_index, best_label, best_prob = top[0]
    st.subheader(f"{best_label} ({best_prob:.1%})")
    fig = px.bar(x=[p for _, _, p in top][::-1], y=[f"{label} ({i})" for i, label, _ in top][::-1],
                 orientation="h", labels={"x": "probability", "y": ""}, range_x=[0, 1], text_auto=".1%")
    fig.update_layout(height=280, margin=dict(l=0, r=10, t=10, b=0))
    st.plotly_chart(fig, key="top5")
