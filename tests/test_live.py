"""vislib.live: one camera frame through the network, and the worker that keeps only the newest frame."""
import threading

import pytest
import torch

from vislib import live
from vislib.models import LayerError
from vislib.runtime import device_lock


@pytest.fixture(scope="module")
def frame(cat):
    return cat.resize((320, 240))  # a camera's frame: wider than tall, not the network's size


def test_top5_equals_model_top_k_and_maps_have_the_layer_shape(lite0, frame):
    layer = "blocks.4.0"
    info = lite0.layer(layer)
    result = live.analyse_frame(lite0, frame, layer, channels=16)
    expected = lite0.top_k(frame, 5)
    assert [i for i, _, _ in result.top] == [i for i, _, _ in expected]
    assert [label for _, label, _ in result.top] == [label for _, label, _ in expected]
    assert [p for *_, p in result.top] == pytest.approx([p for *_, p in expected], abs=1e-5)
    assert result.maps.shape == (16, *info.size)
    assert len(result.channels) == 16 and result.cam is None
    # the strongest channels, strongest first, as the activation page orders them
    from vislib import activations
    full = activations.activation_maps(lite0, frame, layer)
    assert result.channels == activations.channel_order(full)[:16]
    assert torch.allclose(result.maps, full[result.channels], atol=1e-5)


def test_all_channels_and_gradcam_of_the_top_class(lite0, frame):
    from vislib import attribution
    result = live.analyse_frame(lite0, frame, "bn2", channels=None, cam=True)
    assert result.maps.shape == (1280, 7, 7)
    x = lite0.preprocess(frame)[None]
    expected = attribution.attribute(lite0, x, "gradcam", result.top[0][0])
    assert result.cam.shape == (224, 224)
    assert torch.allclose(result.cam, expected, atol=1e-5)


def test_a_bad_layer_is_one_sentence(lite0, frame):
    with pytest.raises(LayerError, match="no layer"):
        live.analyse_frame(lite0, frame, "blocks.99")


def test_with_a_busy_queue_the_latest_frame_wins():
    queue = device_lock("cpu")
    entered, seen = threading.Event(), []

    def work(n):
        entered.set()
        with queue:  # waits behind the other session's job, as analyse_frame does
            seen.append(n)
            return n * 10

    runner = live.LatestFrame(work, queue=queue, share=1.0)
    done = threading.Event()
    queue.acquire()  # another session's job holds the device
    try:
        runner.submit(1)
        assert entered.wait(10)  # the worker took frame 1 and waits for the device
        for n in range(2, 7):
            submitter = threading.Thread(target=runner.submit, args=(n,))
            submitter.start()
            submitter.join(5)
            assert not submitter.is_alive()  # handing a frame over never waits for the device
        assert seen == []
    finally:
        queue.release()
    for _ in range(200):
        if runner.stats()["processed"] == 2:
            done.set()
            break
        threading.Event().wait(0.05)
    assert done.is_set()
    assert seen == [1, 6]  # frames 2..5 were replaced by newer ones while the device was busy
    assert runner.result == 60
    stats = runner.stats()
    assert (stats["received"], stats["processed"], stats["dropped"]) == (6, 2, 4)
    assert stats["latency"] is not None and stats["latency"] > 0


def test_an_error_is_kept_as_a_sentence_and_the_worker_goes_on():
    def work(n):
        if n == 1:
            raise ValueError("Layer x gives no maps.")
        return n

    runner = live.LatestFrame(work, idle_exit=0.2)
    runner.submit(1)
    for _ in range(200):
        if runner.error:
            break
        threading.Event().wait(0.02)
    assert runner.error == "Layer x gives no maps." and runner.result is None
    runner.submit(2)
    for _ in range(200):
        if runner.result == 2:
            break
        threading.Event().wait(0.02)
    assert runner.result == 2 and runner.error is None
    for _ in range(100):  # idle: the worker ends, and the next frame starts a new one
        if not runner.running():
            break
        threading.Event().wait(0.05)
    assert not runner.running()


# ---------------------------------------------------------------- the app under AppTest

def _app():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_sidebar_offers_the_camera_and_keeps_the_sample_until_a_picture_is_taken():
    at = _app()
    assert at.session_state["current"][3] == "sample:chelsea (cat)"
    at.toggle(key="camera_on").set_value(True).run()
    assert not at.exception
    assert [w.proto.label for w in at.sidebar.get("camera_input")] == ["Take a picture"]
    assert any(c.value.startswith("No picture yet") for c in at.sidebar.caption)
    assert at.session_state["current"][3] == "sample:chelsea (cat)"
    at.toggle(key="camera_on").set_value(False).run()
    assert not at.sidebar.get("camera_input")


def test_the_live_page_says_how_to_get_the_camera_and_shows_its_figures():
    from ui.live import HTTPS_NOTE
    at = _app()
    at.switch_page("app_pages/live.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Live camera"
    assert any("--server.sslCertFile cert.pem --server.sslKeyFile key.pem" in c.value for c in at.caption)
    assert "sslCertFile" in HTTPS_NOTE
    assert [m.label for m in at.get("metric")] == ["Analysed frames per second", "Frame-to-result latency",
                                                    "Camera frames per second"]
    assert [m.value for m in at.get("metric")] == ["0.0", "-", "0.0"]
    box = at.selectbox(key="live-layer-efficientnet_lite0")
    assert box.value.name == "blocks.4.0"  # the middle of the catalogue, as on Activation maps
    assert at.session_state["live-worker"][2]["layer"] == "blocks.4.0"


def test_the_page_knows_when_the_browser_will_refuse_the_camera():
    from ui.live import camera_allowed
    assert camera_allowed("http://192.168.1.20:8501/live") is False  # plain HTTP to another machine
    assert camera_allowed("https://192.168.1.20:8501/live") is True
    assert camera_allowed("http://localhost:8501/live") is True
    assert camera_allowed("http://127.0.0.1:8501/live") is True
    assert camera_allowed("http://[::1]:8501/live") is True
    assert camera_allowed("") is None
