"""Class images, fooling images, DeepDream and inversion reach their numbers (small sizes, few steps)."""
import io

import pytest
import torch
from PIL import Image

import vislib
from vislib.optvis import optimize as O
from vislib.synthesis import images as S

OSTRICH, GOLDFISH = 9, 1


def _prob(model, picture, target):
    return float(S.probabilities(model, S._to_tensor(picture, model.device))[target])


@pytest.mark.parametrize("preset, steps", [("Robust", 60), ("Simonyan 2014", 30)])
def test_class_image_reaches_the_target(lite0, preset, steps):
    picture = S.class_visualization(lite0, GOLDFISH, steps=steps, preset=preset, size=128)
    assert picture.size == (128, 128)
    assert _prob(lite0, picture, GOLDFISH) > 0.9


def test_class_image_settings_are_checked(lite0):
    with pytest.raises(ValueError, match="Unknown preset"):
        S.class_visualization(lite0, 1, preset="Picasso")
    with pytest.raises(ValueError, match="Unknown setting 'blurr'"):
        S.class_visualization(lite0, 1, blurr=2)
    with pytest.raises(ValueError, match="classes 0 to 999"):
        S.class_visualization(lite0, 1000)


def test_yosinski_norm_clipping_greys_out_half_the_pixels(lite0):
    picture = S.class_visualization(lite0, GOLDFISH, steps=4, preset="Yosinski 2015 (1)", size=64, blur_every=0)
    grey = (S._to_tensor(picture, "cpu") * 255).round().eq(128).all(1).float().mean()  # 0.5 -> 128 in 8 bits
    assert float(grey) >= 0.45


def test_stopping_a_class_image_returns_early_with_a_picture(lite0):
    seen = []
    picture = S.class_visualization(lite0, GOLDFISH, steps=100, size=64,
                                    progress=lambda step, total, preview=None, **i: seen.append(step) or step < 2)
    assert seen == [1, 2] and isinstance(picture, Image.Image) and picture.size == (64, 64)


def test_fooling_image_survives_the_png_round_trip(lite0, cat, tmp_path):
    picture, info = S.fooling_image(lite0, cat, OSTRICH)
    assert picture.size == (256, 256)  # the network's resize size: preprocessing only crops it
    path = tmp_path / "fooled.png"
    picture.save(path)
    again = vislib.load_image(str(path))
    top = lite0.top_k(again, 1)[0]
    assert top[0] == OSTRICH and info["fooled"]
    assert info["target_after"] == pytest.approx(top[2], abs=1e-5)
    assert info["linf"] <= 4 / 255 + 1e-6
    original = S.network_picture(lite0, cat)
    assert torch.equal(lite0.preprocess(original), lite0.preprocess(cat))
    diff = (S._to_tensor(again, "cpu") - S._to_tensor(original, "cpu")).abs()
    assert float(diff.max()) == pytest.approx(info["linf"])
    assert info["original_class"] == lite0.top_k(cat, 1)[0][0]
    assert info["original_before"] > 0.3 and info["original_after"] < info["original_before"]
    assert info["target_before"] < 0.01 and info["target_after"] >= 0.5
    assert 1 <= info["steps"] <= 100


def test_fooling_rejects_bad_settings(lite0, cat):
    with pytest.raises(ValueError, match="classes 0 to 999"):
        S.fooling_image(lite0, cat, -1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        S.fooling_image(lite0, cat, 3, eps=4)


def test_inversion_reduces_the_feature_error(lite0, cat):
    layer = "blocks.1.0"
    target = S.features(lite0, S._network_input(lite0, cat), layer)
    start = S.feature_error(lite0, O.pixels(224, seed=0).make_image().detach(), layer, target)
    picture = S.invert(lite0, cat, layer, steps=40)
    assert picture.size == (224, 224)
    end = S.feature_error(lite0, S._to_tensor(picture, "cpu"), layer, target)
    assert start / end >= 5


def test_deepdream_changes_the_picture_and_keeps_its_shape(lite0, cat):
    seen = []
    small = cat.resize((96, 64))
    dream = S.deepdream(lite0, small, "blocks.2.0", octaves=2, steps_per_octave=3,
                        progress=lambda step, total, preview=None, **i: seen.append((step, total)))
    assert dream.size == (96, 64)
    assert seen == [(i, 6) for i in range(1, 7)]
    change = (S._to_tensor(dream, "cpu") - S._to_tensor(small, "cpu")).abs().mean()
    assert 0.005 < float(change) < 0.2
    stopped = S.deepdream(lite0, small, "blocks.2.0", octaves=3, steps_per_octave=3,
                          progress=lambda step, total, preview=None, **i: step < 2)
    assert stopped.size == (96, 64)


# ---------------------------------------------------------------- the pages under AppTest

from streamlit.testing.v1 import AppTest  # noqa: E402


@pytest.fixture
def app():
    at = AppTest.from_file("../app.py", default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _go(at, page):
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _labels(at):
    return [b.proto.label for b in at.get("download_button")]


def _captions(at):
    return [c for image in at.get("image") for c in image.captions]


def test_class_images_page_runs_and_offers_png_and_gif(app):
    _go(app, "app_pages/class_images.py")
    assert app.title[0].value == "Class images"
    assert "Press Run to start; the image updates as it is optimised." in [i.value for i in app.info]
    app.selectbox(key="classvis-preset").set_value("Simonyan 2014")
    app.slider(key="classvis-steps").set_value(20)
    app.select_slider(key="classvis-size").set_value(64)
    app.button(key="run:classvis-efficientnet_lite0").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(c.startswith("goldfish, Simonyan 2014 (20 of 20 steps") for c in _captions(app))
    assert {"Download PNG", "Download GIF of the progress"} <= set(_labels(app))
    assert len(app.get("plotly_chart")) == 1  # the loss curve
    assert app.table[0].value["class"].iloc[0] == "goldfish (1)"  # the class image's own top class


def test_fooling_page_shows_before_after_and_difference(app):
    _go(app, "app_pages/fooling.py")
    app.slider(key="fool-steps").set_value(30)
    app.button(key="run:fool-efficientnet_lite0-sample:chelsea (cat)").click().run()
    assert not app.exception, [e.value for e in app.exception]
    captions = _captions(app)
    assert "Original" in captions and "Difference, amplified" in captions
    assert any(c.startswith("Fooling image (largest change 4/255)") for c in captions)
    text = " ".join(m.value for m in app.markdown)
    assert "fools the network: ostrich" in text
    assert len(app.table) == 2 and app.table[1].value["class"].iloc[0] == "ostrich (9)"
    assert "Download PNG" in _labels(app)


def test_deepdream_and_inversion_pages_run(app):
    _go(app, "app_pages/deepdream.py")
    app.slider(key="dream-octaves").set_value(2)
    app.slider(key="dream-steps").set_value(2)
    app.select_slider(key="dream-size").set_value(128)
    app.button(key="run:dream-efficientnet_lite0-sample:chelsea (cat)").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(c.startswith("Dreamed on blocks.") and "(4 of 4 steps" in c for c in _captions(app))
    _go(app, "app_pages/inversion.py")
    app.slider(key="invert-steps").set_value(10)
    app.button(key="run:invert-efficientnet_lite0-sample:chelsea (cat)").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(c.startswith("Reconstructed from blocks.") for c in _captions(app))
    assert "Download GIF of the progress" in _labels(app)
