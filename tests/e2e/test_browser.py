"""A person's first minutes with the app, in Debian's Chromium."""
import re

from playwright.sync_api import expect
from steps import click_chart

from vislib.images import sample_images


def _upload(page, path):
    box = page.get_by_test_id("stFileUploader").filter(has_text="Your image")
    box.locator("input[type=file]").set_input_files(str(path))


def test_upload_a_photo_and_see_its_prediction(page, tmp_path):
    expect(page.get_by_text("What the network sees")).to_be_visible()
    photo = tmp_path / "my coffee.jpg"
    sample_images()["coffee"]().save(photo, quality=92)
    _upload(page, photo)
    expect(page.get_by_role("heading", name=re.compile(r"^espresso \("))).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0


def test_a_non_image_gets_one_sentence_and_the_app_keeps_working(page, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is a text file, not a photo")
    _upload(page, fake)
    alert = page.get_by_test_id("stAlertContentError").filter(has_text="holiday.jpg")
    expect(alert).to_contain_text("This file is not an image this app can read")
    assert page.get_by_test_id("stException").count() == 0
    # the sample picture is still classified, and other pages still work
    expect(page.get_by_role("heading", name=re.compile(r"cat \("))).to_be_visible()
    page.get_by_role("link", name="First-layer filters").click()
    expect(page.get_by_text("32 filters of 3 x 3 pixels")).to_be_visible()


def test_clicking_a_filter_tile_enlarges_it(page):
    page.get_by_role("link", name="First-layer filters").click()
    expect(page.get_by_text("Filter 1, enlarged")).to_be_visible()
    grid = page.get_by_test_id("stPlotlyChart").first
    # the third tile of the first row: 8 tiles across, so 2.5/8 of the width, near the top
    click_chart(page, grid, 2.5 / 8, 0.5 / 4,
                lambda ms: expect(page.get_by_text("Filter 3, enlarged")).to_be_visible(timeout=ms))
