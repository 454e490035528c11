"""The live camera page in Chromium with its fake camera: predictions appear and update, the frame rate shows.

Chromium is launched here with its fake camera (a moving test pattern) and no permission prompt;
those flags belong to this test only, not to the shared `browser` fixture."""
import re

import pytest
from playwright.sync_api import expect

from conftest import CHROMIUM, CHROMIUM_ARGS

FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def camera_browser(browser):
    """A second Chromium with the fake camera, from the shared fixture's Playwright (one Playwright per
    process: a second sync_playwright() refuses to start beside the first)."""
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_CAMERA)
    yield b
    b.close()


def _analysed(page) -> int:
    text = page.get_by_text(re.compile(r"^Analysed \d+ frames of \d+")).inner_text()
    return int(re.match(r"Analysed (\d+)", text).group(1))


def test_live_predictions_update_with_the_fake_camera(camera_browser, app_url):
    context = camera_browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{app_url}/live")
        expect(page.get_by_role("heading", name="Live camera")).to_be_visible()
        player = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
        player.get_by_role("button", name="START").click()
        expect(player.get_by_role("button", name="STOP")).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Analysed [1-9]\d* frames of"))).to_be_visible()
        first = _analysed(page)
        page.wait_for_function(
            f"""() => [...document.querySelectorAll('[data-testid=stCaptionContainer]')].some(e => {{
                const m = e.innerText.match(/^Analysed (\\d+) frames/); return m && +m[1] >= {first + 5}; }})""",
            timeout=90_000)
        fps = page.get_by_test_id("stMetric").filter(has_text="Analysed frames per second")
        value = float(fps.get_by_test_id("stMetricValue").inner_text())
        assert value > 0
        latency = page.get_by_test_id("stMetric").filter(has_text="Frame-to-result latency")
        assert re.fullmatch(r"\d+ ms", latency.get_by_test_id("stMetricValue").inner_text())
        # the top-5 table and the layer's maps are shown
        expect(page.get_by_test_id("stDataFrame")).to_be_visible()
        expect(page.get_by_text(re.compile(r"the 16 strongest channels"))).to_be_visible()
        assert page.get_by_test_id("stException").count() == 0
        player.get_by_role("button", name="STOP").click()
    finally:
        context.close()
