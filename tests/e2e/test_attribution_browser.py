"""The Attribution page in Debian's Chromium: upload a photo, see the matrix of methods."""
import re

from playwright.sync_api import expect
from steps import click_chart

from ui.attribution import LECTURE
from vislib import attribution
from vislib.images import sample_images


def test_upload_a_photo_and_see_every_method_explain_it(page, tmp_path):
    expect(page.get_by_text("What the network sees")).to_be_visible()
    photo = tmp_path / "my coffee.png"
    sample_images()["coffee"]().save(photo)
    page.get_by_test_id("stFileUploader").filter(has_text="Your image").locator("input[type=file]").set_input_files(
        str(photo))
    # the upload is in use once Predict shows its class; only then move on
    expect(page.get_by_role("heading", name=re.compile(r"^espresso \("))).to_be_visible()
    page.get_by_role("link", name="Attribution").click()
    expect(page.get_by_role("heading", name="Attribution")).to_be_visible()
    for method in LECTURE:  # the lecture's seven unless the person picks others
        expect(page.get_by_text(attribution.METHODS[method].label, exact=True).first).to_be_visible()
    # the upload is explained (its top class is the default), each quick lecture method as one panel
    panels = page.get_by_test_id("stImage").filter(has_text="range ")
    expect(panels).to_have_count(6, timeout=120_000)
    expect(page.get_by_text("For the maps above (class espresso)")).to_be_visible(timeout=120_000)
    expect(page.get_by_role("button", name="Run occlusion")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0


def test_a_click_on_the_picture_picks_the_point_of_the_score_curve(page):
    page.get_by_role("link", name="Attribution").click()
    point_x = page.get_by_label("Point: x")
    expect(point_x).to_have_value("112")  # the centre of the 224 px picture
    picture = page.locator(".st-key-occ-point-picture")
    # up and to the left of the centre: the picture is square and centred in its chart
    click_chart(page, picture, 0.35, 0.35, lambda ms: expect(point_x).not_to_have_value("112", timeout=ms))
    x, y = int(point_x.input_value()), int(page.get_by_label("Point: y").input_value())
    assert x < 112 and y < 112 and x % 8 == 4 and y % 8 == 4  # a marker every 8 px, from 4
    assert page.get_by_test_id("stException").count() == 0
