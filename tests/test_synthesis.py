"""Class images, fooling images, DeepDream and inversion reach their numbers (small sizes, few steps)."""
import pytest
import torch
from apptest import captions, go, start
from PIL import Image

import vislib
from vislib import cli
from vislib import optvis as O
from vislib import synthesis as S

OSTRICH, GOLDFISH = 9, 1


def _prob(model, picture, target):
    return float(S.probabilities(model, O.from_pil(picture, model.device))[target])


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
    grey = (O.from_pil(picture, "cpu") * 255).round().eq(128).all(1).float().mean()  # 0.5 -> 128 in 8 bits
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
    diff = (O.from_pil(again, "cpu") - O.from_pil(original, "cpu")).abs()
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
    target = S.features(lite0, S.network_input(lite0, cat), layer)
    start = S.feature_error(lite0, O.pixels(224, seed=0).make_image().detach(), layer, target)
    picture = S.invert(lite0, cat, layer, steps=40)
    assert picture.size == (224, 224)
    end = S.feature_error(lite0, O.from_pil(picture, "cpu"), layer, target)
    assert start / end >= 5


def test_deepdream_changes_the_picture_and_keeps_its_shape(lite0, cat):
    seen = []
    small = cat.resize((96, 64))
    dream = S.deepdream(lite0, small, "blocks.2.0", octaves=2, steps_per_octave=3,
                        progress=lambda step, total, preview=None, **i: seen.append((step, total)))
    assert dream.size == (96, 64)
    assert seen == [(i, 6) for i in range(1, 7)]
    change = (O.from_pil(dream, "cpu") - O.from_pil(small, "cpu")).abs().mean()
    assert 0.005 < float(change) < 0.2
    stopped = S.deepdream(lite0, small, "blocks.2.0", octaves=3, steps_per_octave=3,
                          progress=lambda step, total, preview=None, **i: step < 2)
    assert stopped.size == (96, 64)


# Each technique with a callback that stops it at step 2 of many: (call, how many steps it would take).
STOPPABLE = {
    "class_visualization": (lambda m, cat, p: S.class_visualization(m, GOLDFISH, steps=50, size=64, progress=p), 50),
    "fooling_image": (lambda m, cat, p: S.fooling_image(m, cat, OSTRICH, eps=1 / 255, max_steps=50, progress=p)[0], 50),
    "deepdream": (lambda m, cat, p: S.deepdream(m, cat, "blocks.2.0", octaves=3, steps_per_octave=5, size=96,
                                                progress=p), 15),
    "invert": (lambda m, cat, p: S.invert(m, cat, "blocks.1.0", steps=50, progress=p), 50),
    "inversion_row": (lambda m, cat, p: S.inversion_row(m, cat, ["blocks.1.0", "blocks.2.0"], steps=5, progress=p), 10),
    "texture": (lambda m, cat, p: S.texture(m, cat, size=32, steps=50, progress=p), 50),
    "style_transfer": (lambda m, cat, p: S.style_transfer(m, cat, cat, size=32, steps=50, progress=p), 50),
    "texture_row": (lambda m, cat, p: S.texture_row(m, cat, size=32, steps=5, progress=p),
                    lambda m: 5 * len(S.style.deeper_layer_sets(m))),
    "smoothing_pair": (lambda m, cat, p: S.smoothing_pair(m, cat, cat, size=32, steps=5, progress=p), 10),
}


@pytest.mark.parametrize("name", list(STOPPABLE))
def test_a_callback_returning_false_stops_the_work_with_a_result(lite0, cat, name):
    run, total = STOPPABLE[name]
    total = total(lite0) if callable(total) else total
    seen = []

    def progress(step, of, preview=None, **info):
        seen.append((step, of))
        return step < 2
    result = run(lite0, cat, progress)
    assert seen == [(1, total), (2, total)]  # no step after the stop, and one total for the whole job
    pictures = [image for _, image in result] if isinstance(result, list) else [result]
    # A row ends with the picture it stopped.
    assert len(pictures) == 1 and all(isinstance(p, Image.Image) for p in pictures)


def test_a_channel_the_layer_lacks_is_one_sentence(lite0, cat, tmp_path, capsys):
    sentence = "blocks.4.0 has channels 0 to 111; there is no channel 99999."
    with pytest.raises(ValueError, match=f"^{sentence}$"):
        S.deepdream(lite0, cat, "blocks.4.0:99999", progress=lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(ValueError, match="has no layer named 'blocks.99'"):
        S.invert(lite0, cat, "blocks.99")
    path = tmp_path / "cat.png"
    cat.save(path)
    assert cli.main(["dream", str(path), "blocks.4.0:99999", "--out", str(tmp_path / "d.png")]) != 0
    assert capsys.readouterr().err == f"error: {sentence}\n"


# ---------------------------------------------------------------- the pages under AppTest



@pytest.fixture
def app():
    return start(240)


def _labels(at):
    return [b.proto.label for b in at.get("download_button")]


def test_class_images_page_runs_and_offers_png_and_gif(app):
    go(app, "app_pages/class_images.py")
    assert app.title[0].value == "Class images"
    assert "Press Run to start; the image updates as it is optimised." in [i.value for i in app.info]
    app.selectbox(key="classvis-preset").set_value("Simonyan 2014")
    app.slider(key="classvis-steps").set_value(20)
    app.select_slider(key="classvis-size").set_value(64)
    app.button(key="run:classvis-efficientnet_lite0").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(c.startswith("goldfish, Simonyan 2014 (20 of 20 steps") for c in captions(app))
    assert {"Download PNG", "Download GIF of the progress"} <= set(_labels(app))
    assert len(app.get("plotly_chart")) == 1  # the loss curve
    assert app.table[0].value["class"].iloc[0] == "goldfish (1)"  # the class image's own top class


def test_fooling_page_shows_before_after_and_difference(app):
    go(app, "app_pages/fooling.py")
    app.slider(key="fool-steps").set_value(30)
    app.button(key="run:fool-efficientnet_lite0-sample:chelsea (cat)").click().run()
    assert not app.exception, [e.value for e in app.exception]
    shown = captions(app)
    assert "Original" in shown and "Difference, amplified" in shown
    assert any(c.startswith("Fooling image (largest change 4/255)") for c in shown)
    text = " ".join(m.value for m in app.markdown)
    assert "fools the network: ostrich" in text
    assert len(app.table) == 2 and app.table[1].value["class"].iloc[0] == "ostrich (9)"
    assert "Download PNG" in _labels(app)


def test_deepdream_and_inversion_pages_run(app):
    go(app, "app_pages/deepdream.py")
    app.slider(key="dream-octaves").set_value(2)
    app.slider(key="dream-steps").set_value(2)
    app.select_slider(key="dream-size").set_value(128)
    app.button(key="run:dream-efficientnet_lite0-sample:chelsea (cat)").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(c.startswith("Dreamed on blocks.") and "(4 of 4 steps" in c for c in captions(app))
    go(app, "app_pages/inversion.py")
    app.slider(key="invert-steps").set_value(10)
    app.button(key="run:invert-efficientnet_lite0-sample:chelsea (cat)").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(c.startswith("Reconstructed from blocks.") for c in captions(app))
    assert "Download GIF of the progress" in _labels(app)
