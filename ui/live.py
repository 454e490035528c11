"""The live camera page's pieces: the browser's camera over WebRTC, the latest-frame worker, the results.

The camera's frames arrive on streamlit-webrtc's own thread (`video_frame_callback`), which only
hands each frame to this session's `vislib.live.LatestFrame` and returns it unchanged: the analysis
runs on the worker's thread through the device queue, and frames that arrive meanwhile are
dropped. A fragment redraws the newest result a few times a second without rerunning the page.
"""
from __future__ import annotations

from urllib.parse import urlparse

import pandas as pd
import streamlit as st
from PIL import Image

from vislib import live, render
from vislib.runtime import device_lock

REFRESH_SECONDS = 0.5
# Small frames (the network sees 224 px anyway): the server decodes every frame while holding the GIL
# the analysis also needs. The camera's full rate: the worker keeps only the newest frame.
FRAME = {"width": 320, "height": 240, "frameRate": {"ideal": 30, "max": 30}}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}

HTTPS_NOTE = ("Browsers give a page the camera only over HTTPS, or on the machine itself (http://localhost). "
              "To use the camera from other machines in the classroom, serve the app over HTTPS: "
              "`streamlit run app.py --server.sslCertFile cert.pem --server.sslKeyFile key.pem` "
              "(see README.md, 'Classroom').")


def camera_allowed(address: str | None = None) -> bool | None:
    """Whether the browser will offer the camera at this address (default: the page's own): True on
    https or localhost, False on plain http to another machine, None when unknown (no browser)."""
    if address is None:
        try:
            address = st.context.url or ""
        except Exception:  # noqa: BLE001 - no browser behind this run (a test)
            return None
    url = urlparse(address)
    if not url.scheme:
        return None
    return url.scheme == "https" or url.hostname in LOCAL_HOSTS


def explain_camera() -> None:
    allowed = camera_allowed()
    if allowed is False:
        st.warning("This page was opened over plain HTTP from another machine, so the browser will refuse the "
                   "camera. " + HTTPS_NOTE, icon=":material/no_photography:")
    else:
        st.caption("Press START and allow the camera. No camera, or the browser refused it? The player says so "
                   "below; " + HTTPS_NOTE[0].lower() + HTTPS_NOTE[1:])


def worker(model, model_key: str) -> tuple[live.LatestFrame, dict]:
    """This session's worker for the network (a new one when the network changes) and its settings,
    a dict the page updates and the worker reads at every frame."""
    kept = st.session_state.get("live-worker")
    if kept is None or kept[0] != model_key:
        settings: dict = {"layer": model.layers()[len(model.layers()) // 2].name, "cam": False, "channels": 16}

        def work(picture: Image.Image):
            s = dict(settings)
            return picture, live.analyse_frame(model, picture, s["layer"], channels=s["channels"], cam=s["cam"])
        kept = (model_key, live.LatestFrame(work, queue=device_lock(model.device)), settings)
        st.session_state["live-worker"] = kept
    return kept[1], kept[2]


def stream(runner: live.LatestFrame):
    """The webrtc player; its callback hands frames to `runner`. Returns the streamer's context (None
    without a server session)."""
    from streamlit_webrtc import WebRtcMode, webrtc_streamer  # imported here: it starts an event loop

    def on_frame(frame):
        runner.submit(frame.to_image())  # never waits for the device
        return frame

    try:
        # SENDONLY: the browser shows its own camera and the server only decodes; sending every frame
        # back (SENDRECV) made the server encode video too, on the cores the network needs.
        return webrtc_streamer(key="live", mode=WebRtcMode.SENDONLY, video_frame_callback=on_frame,
                               video_receiver_size=1, media_stream_constraints={"video": FRAME, "audio": False},
                               rtc_configuration={"iceServers": []},  # same network: no STUN server needed
                               async_processing=True)
    except AttributeError:  # no server session behind this run (Streamlit's AppTest): nothing to stream to
        st.info("The camera player needs the app served by `streamlit run`.")
        return None


def _top_table(top) -> None:
    frame = pd.DataFrame({"class": [f"{label} ({i})" for i, label, _ in top], "probability": [p for *_, p in top]})
    st.dataframe(frame, hide_index=True, column_config={"probability": st.column_config.ProgressColumn(
        "probability", min_value=0.0, max_value=1.0, format="percent")})


def show_latest(runner: live.LatestFrame, model, cam: bool) -> None:
    """The newest result: numbers first (frame rate, latency), then top-5, the maps and the CAM."""
    s = runner.stats()
    latency = f"{s['latency'] * 1000:.0f} ms" if s["latency"] is not None else "-"
    a, b, c = st.columns(3)
    a.metric("Analysed frames per second", f"{s['fps']:.1f}")
    b.metric("Frame-to-result latency", latency)
    c.metric("Camera frames per second", f"{s['camera_fps']:.1f}")
    st.caption(f"Analysed {s['processed']} frames of {s['received']}; dropped {s['dropped']} that arrived while "
               "the network was busy (only the newest frame waits).")
    if runner.error:
        st.error(runner.error)
    if runner.result is None:
        st.info("Waiting for the first frame...")
        return
    picture, result = runner.result
    st.caption(f"The last frame's analysis took {result.seconds * 1000:.0f} ms, waiting for the device included.")
    left, right = st.columns([1, 2])
    with left:
        st.subheader(f"{result.top[0][1]} ({result.top[0][2]:.0%})")
        _top_table(result.top)
        seen = model.to_image(model.preprocess(picture))
        if cam and result.cam is not None:
            st.image(render.overlay(seen, result.cam.numpy()), caption="Grad-CAM of the top class", width="stretch")
        else:
            st.image(seen, caption="The frame, as the network sees it", width="stretch")
    with right:
        tiles = [render.enlarge(render.colorize(result.maps[i].numpy()), 64) for i in range(len(result.channels))]
        st.image(render.grid(tiles, 8), width="stretch",
                 caption=f"{result.layer}: the {len(tiles)} strongest channels "
                         f"({', '.join(map(str, result.channels[:8]))}, ...)")


def results(runner: live.LatestFrame, model, cam: bool, playing: bool) -> None:
    """Redraw the newest result every REFRESH_SECONDS while the camera plays."""
    @st.fragment(run_every=REFRESH_SECONDS if playing else None)
    def latest():
        show_latest(runner, model, cam)
    latest()
