"""A full tour in Debian's Chromium: every page that uses the picture, with a good upload, then a bad one.

For each page: upload a photo (on Predict, then open the page by its sidebar link), see the
page's main output, take a screenshot; upload a text file named photo.jpg, see one error
sentence and no exception box, and see the page still working on the sample it falls back to.
Synthesis pages run with their smallest steps and sizes, dataset pages on the 9 built-in samples.

Screenshots go to pytest's tmp_path; with VISLIB_SCREENSHOTS=<folder> they go there as
<page>.png, downscaled for the README:
    VISLIB_SCREENSHOTS=docs/screenshots python -m pytest -q tests/e2e/test_tour.py
"""
import io
import os
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect
from steps import idle

from vislib.images import sample_images

NOT_AN_IMAGE = "photo.jpg: This file is not an image this app can read"


# ---------------------------------------------------------------- helpers

def _no_exception(page):
    assert page.get_by_test_id("stException").count() == 0


def _upload(page, path, label="Your image"):
    box = page.get_by_test_id("stFileUploader").filter(has_text=label).filter(visible=True)  # the open tab's
    box.locator("input[type=file]").set_input_files(str(path))


def _minimum(page, label, wait=True):
    """Move a slider (or select slider) to its smallest value with the keyboard."""
    # the slider of the open tab (the input itself is clipped to nothing, so never counts as visible)
    thumb = page.get_by_test_id("stSlider").filter(visible=True).filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True)).get_by_role("slider")
    thumb.focus()
    thumb.press("Home")
    expect(thumb).to_have_value(thumb.get_attribute("min"))
    if wait:
        idle(page)


# Regenerating the README's pictures: the synthesis pages keep their own defaults (about a minute
# each on a CPU) so that the pictures show what the techniques make, not 10 steps of them.
SHOWCASE = bool(os.environ.get("VISLIB_SCREENSHOTS"))
RESULT_MS = 900_000 if SHOWCASE else 120_000


def _quick(page, label):
    """The smallest setting of a synthesis slider, except when taking the README's pictures."""
    if not SHOWCASE:
        _minimum(page, label)


def _choose(page, label, option):
    box = page.get_by_role("combobox", name=label, exact=True)
    box.scroll_into_view_if_needed()  # a list opened below the fold closes as the sidebar scrolls
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    idle(page)


def _run(page, name="Run"):
    page.get_by_role("button", name=name, exact=True).click()


def _screenshot(page, slug, tmp_path):
    """The whole page; into $VISLIB_SCREENSHOTS as a small PNG for the README when that is set."""
    idle(page)
    page.mouse.move(0, 0)  # no hover tool bars in the picture
    # Streamlit scrolls its main area and sidebar inside the window, so full_page alone would show
    # one window's worth: grow the window to their height for the shot
    height = page.evaluate("""() => Math.max(...['stMain', 'stSidebarContent'].map(
        id => document.querySelector(`[data-testid=${id}]`).scrollHeight))""")
    page.set_viewport_size({"width": 1400, "height": min(height, 6000)})
    page.wait_for_timeout(500)  # plotly redraws its charts
    shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    page.set_viewport_size({"width": 1400, "height": 1000})
    assert shot.width == 1400 and shot.height >= min(height, 6000)
    folder = os.environ.get("VISLIB_SCREENSHOTS")
    if not folder:
        shot.save(tmp_path / f"{slug}.png")
        return
    path = Path(folder) / f"{slug}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    width = 1000
    while True:  # 256 colours at 1000 px wide, narrower while the file is over 400 KB
        small = shot.resize((width, round(shot.height * width / shot.width)), Image.Resampling.LANCZOS)
        small.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
        if path.stat().st_size < 400_000:
            break
        width -= 100


# ---------------------------------------------------------------- each page's good result

def _predict(page):
    expect(page.get_by_role("heading", name=re.compile(r"^espresso \(\d+\.\d%\)$"))).to_be_visible()
    expect(page.get_by_text("What the network sees: 224 x 224 px")).to_be_visible()
    # the top-5 bar chart: five classes, espresso's index 967 among them
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart.locator(".ytick text")).to_have_count(5)
    expect(chart.locator(".ytick text").filter(has_text="espresso (967)")).to_have_count(1)


def _filters(page):
    expect(page.get_by_text("32 filters of 3 x 3 pixels over 3 colour channels.")).to_be_visible()
    expect(page.get_by_text("Filter 1, enlarged")).to_be_visible()


def _activations(page):
    expect(page.get_by_text(re.compile(r"^Output \d+ x \d+ x \d+; one cell covers \d+ input pixels"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Channel \d+: mean -?\d+\.\d{3}, max"))).to_be_visible()
    expect(page.get_by_text("Overlaid on what the network sees")).to_be_visible()


def _activations_to_unit(page):
    """The chosen channel's link opens its unit page, with the network, layer and channel in the address."""
    _activations(page)
    caption = page.get_by_text(re.compile(r"^Channel \d+: mean -?\d+\.\d{3}, max")).inner_text()
    channel = caption.split(":")[0].removeprefix("Channel ")
    page.get_by_role("link", name=f"What does channel {channel} detect?").click()
    expect(page).to_have_url(re.compile(rf"unit\?.*channel={channel}"))
    expect(page.get_by_role("heading", name="What one unit detects")).to_be_visible()
    expect(page.get_by_role("spinbutton", name=re.compile(r"^Channel \(0 to"))).to_have_value(channel)


def _unit(page):
    expect(page.get_by_text("samples: 9 pictures, no labels")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Fires \(above zero somewhere\) in \d+% of the 9 pictures"))).to_be_visible(
        timeout=RESULT_MS)
    expect(page.get_by_text(re.compile(r"^#9: guided backprop$"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Channel \d+$")).first).to_be_visible()  # the neighbours


def _guided_tour(page):
    """The tour opens at its first step; Next goes on, and the step's demo runs on the uploaded photo."""
    expect(page.get_by_role("heading", name="1. The first layer")).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="2. Activation maps")).to_be_visible()
    idle(page)
    page.get_by_role("button", name="Run the demo").click()
    expect(page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^Channel \d+ over the picture$")))\
        .to_be_visible(timeout=RESULT_MS)


def _anatomy(page):
    expect(page.get_by_text(re.compile(r"4,652,008 parameters"))).to_be_visible()
    expect(page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"the centre cell sees \d+ x \d+ px")))\
        .to_be_visible()


def _atlas(page):
    box = page.get_by_role("textbox", name="Atlas folder on the server")
    box.fill("/no/such/atlas")
    box.press("Enter")
    expect(page.get_by_test_id("stAlertContentError").filter(has_text="holds no atlas")).to_be_visible()
    box.fill("")
    box.press("Enter")
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)


def _attribution(page):
    # the fewest SmoothGrad samples and integrated-gradient steps (except for the README's picture):
    # the page computes every map twice (upload, then the sample after the bad upload), which takes
    # minutes at the papers' settings
    page.get_by_text("Settings (the papers' defaults)").click()
    if not SHOWCASE:
        _minimum(page, "SmoothGrad samples", wait=False)  # both at once: no need for the maps in between
        _minimum(page, "Integrated gradients steps")
    # the upload is explained (espresso, its top class), every gradient method as one panel
    expect(page.get_by_text("The faster the probability of espresso falls")).to_be_visible()
    expect(page.get_by_test_id("stImage").filter(has_text="range ")).to_have_count(6, timeout=180_000)
    expect(page.get_by_role("button", name="Run occlusion")).to_be_visible()


def _neighbours(page):
    for space in ("In pixel space", "In feature space"):
        expect(page.get_by_role("heading", name=space)).to_be_visible()
    feature = page.get_by_text(re.compile(r"^picture \d+: cosine distance"))
    pixel = page.get_by_text(re.compile(r"^picture \d+: Euclidean distance"))
    expect(feature).to_have_count(8)  # k = 8 of the 9 samples
    expect(pixel).to_have_count(8)
    # the nearest sample to the uploaded coffee photo is the coffee sample (picture 2), by far, in both spaces
    for captions in (feature, pixel):
        names, distances = zip(*(c.split(" distance ") for c in captions.all_inner_texts()))
        assert names[0].startswith("picture 2:")
        assert float(distances[0]) < float(distances[1]) / 2 and list(distances) == sorted(distances, key=float)


def _feature_map(page):
    expect(page.get_by_text("samples: 9 pictures, no labels")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Your picture: t-SNE cannot place a new point"))).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".legendtext").filter(has_text="your picture")).to_have_count(1)
    expect(chart.locator(".scatterlayer .point")).to_have_count(10)  # 9 samples and the star
    expect(page.get_by_text("Nothing selected yet")).to_be_visible()
    page.get_by_text("Snap the map to a grid of pictures").click()
    expect(page.get_by_text("9 pictures, each in the grid cell nearest its place on the t-SNE map")).to_be_visible()


def _patches(page):
    expect(page.get_by_text("samples: 9 pictures, no labels")).to_be_visible()
    line = page.get_by_text(re.compile(r"^Activations: "))
    find = page.get_by_role("button", name="Find the patches", exact=True)
    expect(line.or_(find)).to_be_visible()
    if find.is_visible():  # not when vislib's disk cache holds this collection's patches already
        find.click()
    expect(line).to_be_visible(timeout=120_000)
    values = [float(v) for v in line.inner_text().removeprefix("Activations: ").split(", ")]
    assert len(values) == 9 and values == sorted(values, reverse=True)  # the top 9, strongest first
    expect(page.get_by_text(re.compile(r"^Picture \d+: activation -?\d+\.\d{3} at cell"))).to_be_visible()


def _class_images(page):
    _quick(page, "Steps")
    _quick(page, "Size (pixels)")
    _run(page)
    expect(page.get_by_text(re.compile(r"^goldfish, Robust \(\d+ of \d+ steps"))).to_be_visible(timeout=RESULT_MS)
    expect(page.get_by_text("What the network says about this image:")).to_be_visible()
    expect(page.get_by_test_id("stTable").locator("tbody tr")).to_have_count(5)


def _fooling(page):
    _quick(page, "At most this many steps")
    _run(page)
    verdict = page.get_by_text(re.compile(r"^After \d+ steps the picture (fools the network|does not fool it yet)"))
    expect(verdict).to_be_visible(timeout=RESULT_MS)
    assert "ostrich" in verdict.inner_text() and "espresso" in verdict.inner_text()
    before = page.get_by_test_id("stTable").first.locator("tbody tr").first
    expect(before).to_contain_text("espresso (967)")
    expect(page.get_by_text("Difference, amplified")).to_be_visible()


def _deepdream(page):
    _quick(page, "Octaves")
    _quick(page, "Steps per octave")
    _quick(page, "Longer side (pixels)")
    _run(page)
    expect(page.get_by_text(re.compile(r"^Dreamed on \S+ \(\d+ of \d+ steps"))).to_be_visible(timeout=RESULT_MS)


def _inversion(page):
    _quick(page, "Steps")
    _run(page)
    expect(page.get_by_text(re.compile(r"^Reconstructed from \S+ \(\d+ of \d+ steps"))).to_be_visible(timeout=RESULT_MS)


def _texture_style(page):
    _quick(page, "Size (px)")
    _quick(page, "Steps")
    _run(page, "Grow the texture")
    expect(page.get_by_text(re.compile(r"^Texture \(\d+ of \d+ steps"))).to_be_visible(timeout=RESULT_MS)


# (link in the sidebar, url path, check of the good result)
PAGES = [("Predict", "predict", _predict), ("Guided tour", "tour", _guided_tour),
         ("First-layer filters", "filters", _filters),
         ("Activation maps", "activations", _activations), ("Attribution", "attribution", _attribution),
         ("Nearest neighbours", "neighbours", _neighbours), ("Feature map", "feature_map", _feature_map),
         ("Maximally activating patches", "patches", _patches), ("What one unit detects", "unit", _unit),
         ("Atlas of a network", "atlas", _atlas), ("Class images", "class_images", _class_images),
         ("Fooling", "fooling", _fooling), ("DeepDream", "deepdream", _deepdream),
         ("Inversion", "inversion", _inversion), ("Texture and style", "texture_style", _texture_style),
         ("Network anatomy", "anatomy", _anatomy)]
# What each page shows again after the bad upload, on the sample picture it falls back to.
STILL_THERE = {"predict": "What the network sees: 224 x 224 px", "tour": "2. Activation maps",
               "filters": "Filter 1, enlarged",
               "activations": "Overlaid on what the network sees",
               "neighbours": "In feature space", "feature_map": "Nothing selected yet", "patches": "Activations: ",
               "unit": "The pictures that excite it most", "atlas": "Open an atlas",
               "class_images": "What the network says about this image:", "fooling": "Largest change per pixel",
               "deepdream": "Steps per octave", "inversion": "From shallow to deep", "texture_style": "The sample",
               "anatomy": "Receptive field, layer by layer"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    good, bad = folder / "coffee.jpg", folder / "photo.jpg"
    sample_images()["coffee"]().save(good, quality=90)
    bad.write_text("this is a text file, not a photo")
    bad_zip = folder / "pictures.zip"
    bad_zip.write_text("not a zip either")
    return good, bad, bad_zip


def test_a_channel_of_the_activation_maps_leads_to_its_unit_page(page):
    page.get_by_role("link", name="Activation maps", exact=True).click()
    _activations_to_unit(page)
    _no_exception(page)


@pytest.mark.parametrize("title, slug, check", PAGES, ids=[slug for _, slug, _ in PAGES])
def test_page_with_a_good_and_a_bad_upload(page, photos, tmp_path, title, slug, check):
    good, bad, bad_zip = photos
    _upload(page, good)
    # the upload is in use once Predict shows its class; only then move on
    expect(page.get_by_role("heading", name=re.compile(r"^espresso \("))).to_be_visible()
    if slug != "predict":
        page.get_by_role("link", name=title, exact=True).click()
    expect(page).to_have_url(re.compile(slug if slug != "predict" else r"/$"))
    check(page)
    _no_exception(page)
    _screenshot(page, slug, tmp_path)

    _upload(page, bad)
    error = page.get_by_test_id("stAlertContentError")
    expect(error).to_have_count(1)
    expect(error).to_contain_text(NOT_AN_IMAGE)
    expect(error).to_contain_text("Showing a sample picture meanwhile.")
    if slug == "attribution":
        # the page starts over on the sample (its top class is picked); rather than wait a minute for
        # its maps, leave for Predict, which interrupts the run and shows the sample's class
        expect(page.get_by_role("combobox", name="Class to explain")).to_have_value("tiger cat (282)")
        page.get_by_role("link", name="Predict", exact=True).click()
        expect(page.get_by_role("heading", name=re.compile(r"^tiger cat \("))).to_be_visible()
    else:
        idle(page)
        expect(page.get_by_text(STILL_THERE[slug]).first).to_be_visible()
    _no_exception(page)
    if slug == "predict":  # the sidebar's sample (the cat) is classified, and another sample can be picked
        expect(page.get_by_role("heading", name=re.compile(r"cat \("))).to_be_visible()
        _choose(page, "Sample picture", "rocket")
        expect(page.get_by_role("heading", name=re.compile(r"^missile \("))).to_be_visible()
    if slug == "texture_style":  # its own sample upload refuses the same file in one sentence
        _upload(page, bad, "...or your own picture")
        expect(page.get_by_test_id("stAlertContentError").filter(has_text="Using brick meanwhile.")).to_contain_text(
            NOT_AN_IMAGE)
        idle(page)
        expect(page.get_by_text("The sample", exact=True)).to_be_visible()
    if slug in ("neighbours", "feature_map", "patches"):  # a zip that is not one
        _choose(page, "Collection", "A zip of your pictures")
        _upload(page, bad_zip, "Zip of a folder")
        refused = page.get_by_test_id("stAlertContentError").filter(has_text="zip")
        expect(refused).to_have_count(1)
        expect(refused).to_contain_text("is not a zip file that can be read.")
        expect(page.get_by_text("Choose the pictures to look at.")).to_be_visible()
    _no_exception(page)
