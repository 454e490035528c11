"""A person starts a class image in Chromium, watches previews arrive, and stops it."""
import re

from playwright.sync_api import expect


def test_start_watch_previews_and_stop_a_class_image(page):
    link = page.get_by_role("link", name="Class images")
    expect(link).to_be_visible(timeout=180_000)  # the first visit also loads the network
    link.click()
    expect(page.get_by_role("heading", name="Class images")).to_be_visible()
    page.get_by_test_id("stButton").filter(has_text=re.compile(r"^Run$")).locator("button").click()
    captions = page.get_by_text(re.compile(r"^step \d+ of 100$"))
    expect(captions.first).to_be_visible(timeout=120_000)
    first = captions.first.inner_text()
    expect(page.get_by_text(re.compile(r"^step \d+ of 100$"))).not_to_have_text(first, timeout=120_000)  # a newer preview
    page.get_by_role("button", name="Stop", exact=True).first.click()
    expect(page.get_by_text(re.compile(r"^Stopped at step \d+ of 100"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^goldfish, Robust \(\d+ of 100 steps"))).to_be_visible()
    expect(page.get_by_role("button", name="Download GIF of the progress")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
