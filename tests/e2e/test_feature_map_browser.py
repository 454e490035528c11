"""The Feature map in Debian's Chromium: build a map of the samples, drag a box over it, see the pictures."""
import re

from playwright.sync_api import expect
from steps import idle


def test_box_selection_on_the_map_shows_the_selected_pictures(page):
    page.get_by_role("link", name="Feature map").click()
    expect(page.get_by_text("Nothing selected yet")).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart").first
    idle(page)  # a drag while the script still runs can be lost
    chart.hover()  # plotly shows its tool bar on hover
    chart.locator('.modebar-btn[data-val="select"]').first.click()
    plot = chart.locator(".nsewdrag").first.bounding_box()
    # a box over the whole plotting area (from a corner to the opposite one) catches every sample
    page.mouse.move(plot["x"] + 3, plot["y"] + 3)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2, steps=5)
    page.mouse.move(plot["x"] + plot["width"] - 3, plot["y"] + plot["height"] - 3, steps=5)
    page.mouse.up()
    heading = page.get_by_role("heading", name=re.compile(r"^\d+ selected pictures"))
    expect(heading).to_be_visible()
    count = int(heading.inner_text().split()[0])
    assert 1 <= count <= 9  # the built-in samples are 9 pictures
    captions = page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^picture \d+$"))
    expect(captions).to_have_count(count)
    expect(page.get_by_role("button", name="Download the selected pictures")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
