import streamlit as st

from ui import basics_upsampling as up
from ui import sidebar

model, model_key, picture, image_key = sidebar.current(needs=("first_conv",))
st.title("Upsampling")
st.caption("A segmentation network shrinks the picture to understand it, then must grow its answer back to one "
           "label per pixel. Unpooling copies values (nearest neighbour), plants them in a corner (bed of "
           "nails) or puts them back where a max pooling found them (max unpooling). A transposed convolution "
           "learns its upsampling: each input value stamps a k x k kernel onto the output every `stride` "
           "pixels, and where stamps overlap they add up. Choose kernel size and stride carefully.")

factor, kernel, size = up.controls()
st.subheader("On your picture")
up.on_picture(model, model_key, picture, image_key, factor, kernel, size)

st.subheader("Max unpooling remembers where the maxima were")
st.caption("The strongest map of the network's first convolution on your picture, max pooled and unpooled again "
           "with the positions the pooling remembered.")
up.max_unpooling(model, model_key, picture, image_key, factor)

st.subheader("The checkerboard of a transposed convolution")
st.caption("On a constant picture every method should give a constant picture. A transposed convolution whose "
           "kernel size is not a multiple of its stride does not (Odena et al. 2016); resizing first and then "
           "convolving does.")
up.checkerboard(factor, kernel)
