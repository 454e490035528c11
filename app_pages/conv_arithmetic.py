import streamlit as st

from ui import basics_conv, sidebar

model, model_key, picture, image_key = sidebar.current(needs=("first_conv",))
st.title("Convolution arithmetic")
st.caption("A convolution slides a k x k filter over the input in steps of the stride, after adding a border "
           "of padding; dilation spreads the filter's taps apart. Each position gives one output value, each "
           "filter one output channel. So the size shrinks by the kernel and divides by the stride, and the "
           "number of weights depends on the kernel and the channels, never on the picture's size.")

values = basics_conv.inputs()
basics_conv.formulas(values)

st.subheader("The filter sliding over your picture")
st.caption("A real filter of the chosen network's first layer, with the stride, padding and dilation above, on "
           "a small copy of your picture. Move the filter and watch the output fill in.")
basics_conv.sliding(model, model_key, picture, values)

st.subheader("Why convolutions: fewer weights")
basics_conv.fully_connected(values)
