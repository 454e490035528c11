import streamlit as st

from ui import basics, sidebar

model, model_key, picture, image_key = sidebar.current()
st.title("Network anatomy")
st.caption("Every layer of the chosen network with the shape it gives out, its weights and the multiply-adds "
           "it does for one picture. A convolution's weights are k x k x C_in per filter, shared by every "
           "position; its cost is that times the number of output cells. So a layer on a large grid can be "
           "cheap in weights and dear in arithmetic, and a classifier the other way round.")

layers = basics.rows(model, model_key)
basics.totals_line(model, layers)
basics.table(layers, model_key)
basics.stage_chart(layers)

st.subheader("Receptive field, layer by layer")
st.caption("What one cell in the middle of a layer's output can see of the input. The red square is the "
           "chosen layer's field; the grey ones are the layers before it.")
basics.receptive_field(model, model_key, picture, image_key, layers)

st.subheader("The zoo: accuracy against cost")
st.caption("Each bubble is a network: across, the multiply-adds for one picture; up, the share of labelled "
           "ImageNet pictures it names right (top-1); its area, the number of parameters (the chart of "
           "Canziani et al. 2016). More arithmetic does not buy accuracy at the same rate in every design.")
basics.zoo(model_key)
