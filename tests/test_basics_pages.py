"""The four pages of "The basics" under Streamlit's AppTest: they render, show the right numbers and
react to their controls."""
from pathlib import Path

import pytest
from apptest import captions, go, ok, start

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"


@pytest.fixture
def app():
    return start(180)


def _text(at):
    return " ".join(m.value for m in at.markdown)


def test_anatomy_page_totals_table_and_receptive_field(app):
    go(app, "app_pages/anatomy.py")
    assert app.title[0].value == "Network anatomy"
    assert "**4,652,008 parameters** and **385,187,552 multiply-adds** for one picture of 224 x 224 px, in 240 " \
           "layers (99 with weights)." in _text(app)
    table = app.dataframe[0].value
    assert len(table) == 99 and table["parameters"].sum() == 4_652_008
    assert table.iloc[0].to_dict() == {"layer": "conv_stem", "kind": "conv", "output": "32 x 112 x 112",
                                       "parameters": 864, "multiply-adds": 10_838_016, "stride": 2,
                                       "receptive field": 3}
    ok(app.toggle(key="anatomy-weighted-efficientnet_lite0").set_value(False).run())
    assert len(app.dataframe[0].value) == 240
    slider = app.select_slider(key="anatomy-rf-efficientnet_lite0")
    ok(slider.set_value("conv_stem").run())
    assert "sees **3 x 3** of them" in _text(app) and "conv_stem: the centre cell sees 3 x 3 px" in captions(app)
    ok(slider.set_value("blocks.6.0.conv_pwl").run())
    assert "One cell stands for **32 x 32** input pixels" in _text(app)
    labels = [b.proto.label for b in app.get("download_button")]
    assert {"Download the table (CSV)", "Download this picture"} <= set(labels)
    assert len(app.get("plotly_chart")) == 1  # the stages; the zoo chart waits for its button


def test_anatomy_page_follows_the_model(app):
    app.selectbox(key="model_name").set_value("fashion_cnn").run()
    go(app, "app_pages/anatomy.py")
    assert "**391,914 parameters** and **8,752,128 multiply-adds** for one picture of 28 x 28 px" in _text(app)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="the ImageNet samples live outside the repository")
def test_anatomy_zoo_bubbles(app):
    go(app, "app_pages/anatomy.py")
    app.number_input(key="anatomy-zoo-limit").set_value(10).run()
    ok(app.button(key="run:anatomy-zoo").click().run())
    zoo = app.dataframe[-1].value
    assert list(zoo["network"]) == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert list(zoo["pictures"]) == [10, 10, 10] and (zoo["top-1"] >= 0.5).all()
    assert zoo["multiply-adds"][0] == 385_187_552 and zoo["parameters"][0] == 4_652_008
    assert len(app.get("plotly_chart")) == 2


def test_conv_arithmetic_presets_and_formulas(app):
    go(app, "app_pages/conv_arithmetic.py")
    text = _text(app)
    assert "⌊(224 + 2·2 - (11 - 1) - 1) / 4⌋ + 1 = 55, so the output is **55 x 55 x 96** (torch's nn.Conv2d " \
           "gives [1, 96, 55, 55]: batch, channels, height, width)" in text
    assert "96 · (11·11·3 + 1) = 34,944" in text and "55·55·96 · 11·11·3 = 105,415,200" in text
    assert any("54.25" in i.value for i in app.info)
    ok(app.selectbox(key="conv-preset").set_value("AlexNet, torchvision's first layer").run())
    assert "**55 x 55 x 64**" in _text(app)
    ok(app.number_input(key="conv-size").set_value(8).run())
    ok(app.number_input(key="conv-padding").set_value(0).run())
    assert [e.value for e in app.error][:1] == ["A 11 x 11 kernel spans 11 pixels, more than the 8 of the padded input."]
    assert "25,120" in _text(app) and "**78 times fewer**" in _text(app) and "**9.7 times fewer**" in _text(app)


def test_conv_arithmetic_sliding_filter_grows_the_output(app):
    go(app, "app_pages/conv_arithmetic.py")
    ok(app.selectbox(key="conv-preset").set_value("VGG, any layer").run())  # stride 1, padding 1
    slider = next(s for s in app.slider if s.key.startswith("slide-at-efficientnet_lite0-32-1-1-1"))
    assert slider.max == 32 * 32  # lite0's 3 x 3 filter over 32 px with padding 1: 32 x 32 positions
    ok(slider.set_value(5).run())
    assert any(c.startswith("The output, 32 x 32: 5 of 1024 values computed") for c in captions(app))
    assert "32 x 32 px input, padded by 1; the 3 x 3 filter at position 5" in captions(app)


def test_upsampling_page_methods_and_checkerboard(app):
    go(app, "app_pages/upsampling.py")
    shown = captions(app)
    assert {"your picture, 16 x 16", "nearest, 32 x 32", "bed of nails, 32 x 32", "bilinear, 32 x 32",
            "transposed convolution, 33 x 33", "resize, then convolve, 32 x 32"} <= set(shown)
    assert "conv_stem, channel 23: the middle 48 x 48" in shown and "max pooled 2 x 2: 24 x 24" in shown
    assert "The stride 2 **does not divide** the kernel size 3" in _text(app)
    assert any("transposed convolution 3 x 3, stride 2: unevenness 1.38" in c for c in shown)
    grid = app.dataframe[0].value
    assert grid.loc["kernel 4", "stride 2"] == 0 and grid.loc["kernel 3", "stride 2"] > 0
    assert (grid["stride 1"] == 0).all()
    ok(app.slider(key="up-kernel").set_value(4).run())
    assert "The stride 2 **divides** the kernel size 4" in _text(app)
    assert any("transposed convolution 4 x 4, stride 2: unevenness 0.00" in c for c in captions(app))


def test_depth_page_gradients_and_race(app):
    go(app, "app_pages/depth.py")
    plain, residual = (m.value for m in app.metric)
    assert float(plain) < 1e-6 and 0.1 < float(residual) < 10
    ok(app.slider(key="depth-layers").set_value(8).run())
    ok(app.button(key="run:depth-race-8-0").click().run())
    result = app.dataframe[0].value
    assert list(result["network"]) == ["plain 8 layers", "plain 8 layers", "residual 8 layers"]
    assert result["test accuracy"][0] == result["test accuracy"][1] > 0.3  # the same network, the same batches
    assert {"Download the results (CSV)", "Download the gradient norms (CSV)"} <= \
        {b.proto.label for b in app.get("download_button")}
