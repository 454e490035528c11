"""The basics in Debian's Chromium: each page opens from the navigation, shows its numbers and
answers its controls, without an exception box."""
import os
import re

from playwright.sync_api import expect
from steps import idle

SHOTS = os.environ.get("VISLIB_SCREENSHOTS")  # a folder: each page is also saved as a picture there


def _open(page, title):
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    idle(page)


def _done(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)
    assert page.get_by_test_id("stException").count() == 0


def test_anatomy_page(page):
    _open(page, "Network anatomy")
    expect(page.get_by_text(re.compile(r"4,652,008 parameters"))).to_be_visible()
    expect(page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"the centre cell sees \d+ x \d+ px")))\
        .to_be_visible()
    expect(page.get_by_role("button", name="Measure the zoo")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1)
    _done(page, "anatomy")


def test_conv_arithmetic_page(page):
    _open(page, "Convolution arithmetic")
    expect(page.get_by_text(re.compile(r"so the output is 55 x 55 x 96"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"54\.25 is not whole"))).to_be_visible()
    expect(page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^The output, \d+ x \d+: \d+ of \d+")))\
        .to_be_visible()
    _done(page, "conv_arithmetic")


def test_upsampling_page(page):
    _open(page, "Upsampling")
    expect(page.get_by_text("transposed convolution 3 x 3, stride 2: unevenness 1.38")).to_be_visible()
    expect(page.get_by_text("resize, then convolve 3 x 3: unevenness 0.00")).to_be_visible()
    expect(page.get_by_text("max unpooled: each value back where its maximum was")).to_be_visible()
    _done(page, "upsampling")


def test_depth_page_runs_the_race(page):
    _open(page, "Why depth needs shortcuts")
    expect(page.get_by_text("plain: first layer's gradient / last layer's")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Train the three networks")).click()
    expect(page.get_by_role("button", name="Download the results (CSV)")).to_be_visible(timeout=180_000)
    expect(page.get_by_text("residual 32 layers").first).to_be_visible()
    _done(page, "depth")
