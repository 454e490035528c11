import streamlit as st

from ui import basics_depth

st.title("Why depth needs shortcuts")
st.caption("AlexNet had 8 layers, VGG 19. Stacking more made training worse, not better: the error of the "
           "loss reaches a layer only through every layer above it, and each plain layer shrinks it, so the "
           "first layers of a deep stack hardly learn. ResNet adds the input of every two layers to their "
           "output (a shortcut): the gradient then has a path that skips them, and 152 layers train.")

c1, c2 = st.columns([3, 1])
layers = c1.slider("Layers (weight layers: a stem, 3 x 3 convolutions in pairs, a classifier)", 8, 56, 32, 2,
                   key="depth-layers")
seed = c2.number_input("Seed", 0, 999, 0, key="depth-seed")

st.subheader("The gradient reaching each layer, at initialisation")
st.caption("Both networks freshly initialised the way nn.Conv2d does it, no normalisation, one batch of 128 "
           "Fashion-MNIST pictures. Without shortcuts the gradient falls by orders of magnitude on its way down; "
           "with them it stays within a small factor.")
basics_depth.gradient_chart(layers, seed)

st.subheader("A short training race")
st.caption("The plain network with 8 layers, the plain one with the chosen depth and the residual one with the "
           "chosen depth, trained alike (Adam, learning rate 0.003). Depth alone makes the plain network worse "
           "than its shallow twin; with shortcuts the deep one is at least as good.")
basics_depth.race(layers, seed)
