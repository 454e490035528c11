"""Every page under Streamlit's AppTest: it renders, shows the right numbers, survives bad choices."""
import pytest
from apptest import captions, go, start

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture
def app():
    return start(120)


def test_opens_on_predict_with_top5_for_the_sample_cat(app):
    assert app.title[0].value == "Predict"
    top_label = app.subheader[0].value.rsplit(" (", 1)[0]
    assert top_label in CATS
    chart = app.get("plotly_chart")[0]
    assert '"orientation":"h"' in chart.proto.spec.replace(" ", "")
    assert "What the network sees: 224 x 224 px" in captions(app)


def test_sample_picker_changes_the_prediction(app):
    app.selectbox(key="sample_name").set_value("coffee").run()
    assert not app.exception
    assert app.subheader[0].value.rsplit(" (", 1)[0] in {"espresso", "cup", "coffee mug", "eggnog"}


def test_filters_page_shows_all_first_layer_kernels(app):
    go(app, "app_pages/filters.py")
    assert "32 filters of 3 x 3 pixels over 3 colour channels." in [m.value for m in app.markdown]
    app.number_input(key="filter-pick").set_value(5).run()
    assert "Filter 5, enlarged" in captions(app)
    app.toggle[0].set_value(True).run()
    assert not app.exception
    assert [b.proto.label for b in app.get("download_button")][:1] == ["Download all filters"]


def test_activation_page_reports_geometry_and_pages_channels(app):
    go(app, "app_pages/activations.py")
    layer_box = app.selectbox(key="layer-efficientnet_lite0")
    layer_box.set_value(next(o for o in layer_box.options if o.startswith("bn2 ("))).run()
    text = " ".join(m.value for m in app.markdown)
    assert "Output 1280 x 7 x 7" in text and "32 input pixels (stride)" in text
    pager = app.number_input(key="page-efficientnet_lite0-bn2")
    assert pager.max == 20  # 1280 channels, 64 a page
    pager.set_value(3).run()
    assert not app.exception
    labels = [b.proto.label for b in app.get("download_button")]
    assert {"Download this page of maps", "Download map", "Download overlay"} <= set(labels)


def test_a_model_that_cannot_load_leaves_the_app_working(app, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: vgg16 must be downloaded
    monkeypatch.setattr("vislib.models.torchvision_zoo.can_reach", lambda host: False)
    import torch.hub
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    app.selectbox(key="model_name").set_value("vgg16").run()
    assert not app.exception
    assert any("vgg16-" in e.value and str(tmp_path) in e.value for e in app.error)
    assert "Pick a network that loads in the sidebar." in [i.value for i in app.info]
    app.selectbox(key="model_name").set_value("efficientnet_lite0").run()
    assert app.subheader[0].value.rsplit(" (", 1)[0] in CATS
