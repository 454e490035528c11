"""Texture synthesis and style transfer: Gram losses fall, smoothing is the paper's softmax, runs stop on request."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from vislib import cli, synthesis
from vislib import optvis as optimize
from vislib.synthesis import style


@pytest.fixture(scope="module")
def brick():
    return style.texture_samples()["brick"]()


@pytest.fixture(scope="module")
def mosaic():
    return style.texture_samples()["mosaic"]()


def test_smoothing_is_a_softmax_over_all_channels_and_positions():
    x = torch.randn(2, 4, 3, 5) * 3
    s = style.smooth(x, temperature=2.0)
    assert s.shape == x.shape
    expected = torch.softmax(x.flatten(1) / 2.0, dim=1).view_as(x) * 60
    torch.testing.assert_close(s, expected)
    # Each image on its own: its values sum to their count; ratios are exp of differences over T.
    torch.testing.assert_close(s.flatten(1).sum(1), torch.full((2,), 60.0))
    ratio = s[0, 1, 2, 3] / s[0, 3, 0, 0]
    assert math.isclose(float(ratio), math.exp(float(x[0, 1, 2, 3] - x[0, 3, 0, 0]) / 2.0), rel_tol=1e-4)
    # Smoothing flattens peaks: a higher temperature gives a lower maximum.
    assert style.smooth(x, 10.0).max() < style.smooth(x, 1.0).max()


def test_temperature_follows_the_spread_of_the_activations():
    x = torch.randn(1, 8, 16, 16)
    assert math.isclose(style.temperature(5 * x), 5 * style.temperature(x), rel_tol=1e-5)
    assert math.isclose(style.temperature(x), style.TEMPERATURE * float(x.std()), rel_tol=1e-5)


def test_presets(lite0, random_model):
    assert style.smoothing_default(lite0) and lite0.arch not in style.VGG
    names = {info.name for info in lite0.layers()}
    assert set(style.style_layers(lite0)) <= names and style.content_layer(lite0) in names
    assert [s[-1] for s in style.deeper_layer_sets(lite0)] == style.style_layers(lite0)
    vgg = random_model("vgg19")
    assert style.style_layers(vgg) == ["features.1", "features.6", "features.11", "features.20", "features.29"]
    assert style.content_layer(vgg) == "features.22" and not style.smoothing_default(vgg)
    resnet = random_model("resnet18")
    assert style.style_layers(resnet) == ["relu", "layer1.1", "layer2.1", "layer3.1", "layer4.1"]


def test_gram_distance_is_zero_for_the_same_picture(lite0, cat, brick):
    assert style.gram_distance(lite0, cat, cat, size=64) == pytest.approx(0.0, abs=1e-9)
    assert style.gram_distance(lite0, cat, brick, size=64) > 0.1


def test_texture_lowers_the_gram_loss_20x_and_keeps_a_grey_sample_grey(lite0, brick):
    size = 64
    start = optimize.to_pil(style.noise(size, seed=0))

    def colour_noise(picture):  # mean distance of each channel from the pixel's grey, in grey levels
        x = torch.from_numpy(np.asarray(picture, dtype=np.float32))
        return float((x - x.mean(-1, keepdim=True)).abs().mean())

    result = synthesis.texture(lite0, brick, size=size, steps=50, seed=0)  # the decorrelated Fourier image
    assert result.size == (size, size)
    before, after = style.gram_loss(lite0, start, brick, size), style.gram_loss(lite0, result, brick, size)
    assert before / after >= 20, (before, after)
    # Brick is grey: the Fourier image's decorrelated colours stay grey, Gatys' noise pixels keep
    # much of their colour noise (which the networks hardly see); the noise itself is at about 50.
    pixels = synthesis.texture(lite0, brick, size=size, steps=50, seed=0, param="pixels")
    assert colour_noise(result) < 3 < 10 < colour_noise(pixels) < colour_noise(start), \
        (colour_noise(result), colour_noise(pixels), colour_noise(start))
    with pytest.raises(ValueError, match="fourier or pixels"):
        synthesis.texture(lite0, brick, size=size, steps=1, param="wavelets")


def test_a_step_that_blows_the_loss_up_is_undone(lite0):
    # A one-number image and a loss with a cliff: (x - 2)^2, plus 100 from x = 2.9 on. Steps of
    # fixed size 1.5 go 0 -> 1.5 -> 3.0 (over the cliff): undone, back to 1.5, and again.
    x = torch.zeros((), device=lite0.device, requires_grad=True)
    param = optimize.Param([x], lambda: x.view(1, 1, 1, 1).expand(1, 3, 32, 32))

    def loss(acts):
        v = acts[optimize.IMAGE].mean()
        return (v - 2) ** 2 + 100 * (v > 2.9).float()
    seen = []
    image = optimize.render_restarting(lite0, -optimize.Objective(loss, "cliff"), param, 6,
                                    lambda step, total, preview=None, loss=None: seen.append((step, total, loss)),
                                    optimizer="normalized", lr=1.5)
    assert float(image.mean()) == 1.5 and float(x.detach()) == 1.5  # the best seen, not the last step's 3.0
    # The steps whose loss jumped (3 and 5) are not reported; every step counts towards the 6.
    assert seen == [(1, 6, 4.0), (2, 6, 0.25), (4, 6, 0.25), (6, 6, 0.25)]


def test_style_transfer_lowers_the_gram_loss_from_the_photo(lite0, cat, mosaic):
    result = synthesis.style_transfer(lite0, cat, mosaic, steps=30, size=64)
    assert result.size == (round(64 * cat.width / cat.height), 64)
    before, after = style.gram_loss(lite0, cat, mosaic, 64), style.gram_loss(lite0, result, mosaic, 64)
    assert before / after >= 5, (before, after)


def test_stopping_through_the_callback_returns_an_image_early(lite0, brick):
    calls = []

    def progress(step, total, preview=None, **info):
        calls.append((step, total, info.get("loss")))
        return step < 3

    result = synthesis.texture(lite0, brick, size=48, steps=50, progress=progress, optimizer="adam")
    assert isinstance(result, Image.Image) and result.size == (48, 48)
    assert [c[0] for c in calls] == [1, 2, 3] and calls[0][1] == 50 and calls[0][2] > 0


def test_cli_writes_a_texture_and_refuses_unknown_layers(tmp_path, capsys):
    out = tmp_path / "t.png"
    assert cli.main(["texture", "gravel", "--size", "32", "--steps", "2", "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 32)
    assert cli.main(["style", "nothing.png", "mosaic"]) != 0
    assert "neither a sample" in capsys.readouterr().err
    assert cli.main(["texture", "brick", "--layers", "blocks.99", "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: efficientnet_lite0 has no layer named 'blocks.99'; its layers are")
    assert err.count("\n") == 1


def test_page_grows_a_texture_and_offers_downloads():
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.run()
    at.switch_page("app_pages/texture_style.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Texture and style"
    at.select_slider(key="tex-size").set_value(64)
    at.slider(key="tex-steps").set_value(10)
    at.button(key="run:texture-efficientnet_lite0").click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download PNG" in labels and "Download GIF of the progress" in labels
    assert any(c.startswith("Texture (10 of 10 steps") for image in at.get("image") for c in image.captions)
