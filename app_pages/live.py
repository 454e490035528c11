import streamlit as st

from ui import live, sidebar, synthesis

model, model_key, _, _ = sidebar.current(needs=("layers",))
st.title("Live camera")
st.caption("Hold something up to the camera and watch the network answer, frame by frame: its top five classes "
           "and the activation maps of one layer, as in the Deep Visualization Toolbox (Yosinski et al. 2015). "
           "Frames that arrive while the network is busy are skipped, so what you see is always the newest.")
live.explain_camera()
runner, settings = live.worker(model, model_key)
left, right = st.columns(2)
settings["layer"] = synthesis.layer_picker(model, f"live-layer-{model_key}", len(model.layers()) // 2).name
settings["cam"] = right.toggle("Grad-CAM overlay of the top class (one more pass: slower)", key="live-cam")
context = live.stream(runner)
live.results(runner, model, settings["cam"], bool(context and context.state.playing))
