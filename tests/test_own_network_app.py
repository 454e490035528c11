"""Every page of the app on a person's own network: a checkpoint of an architecture the app only
knows from torchvision's registry, and a wrapped network with no spatial layer (a transformer's
tokens), where the pages that need a map say so in one sentence and the others work."""
import pytest
import torch
from apptest import go, ok
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest
from torch import nn

import vislib


PAGES = ["predict", "tour", "live", "filters", "activations", "attribution", "leaderboard", "neighbours",
         "feature_map", "patches", "unit", "atlas", "class_images", "fooling", "deepdream", "inversion",
         "texture_style", "anatomy", "conv_arithmetic", "upsampling", "depth"]
LABELS = ["apple", "boat", "cloud", "dog"]


class Tokens(nn.Module):
    """A tiny MLP-Mixer's shape: 8 x 8 patches cut out and embedded as tokens [N, 16, 24], mixed,
    pooled, classified - no convolution and no layer with a map of the picture."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Linear(3 * 8 * 8, 24)
        self.mix = nn.TransformerEncoderLayer(24, 2, 48, batch_first=True, dropout=0.0)
        self.head = nn.Linear(24, 4)

    def forward(self, x):
        tokens = self.patch(nn.functional.unfold(x, 8, stride=8).transpose(1, 2))
        return self.head(self.mix(tokens).mean(1))


def _start_with(model) -> AppTest:
    """The app as it is once a person has loaded `model` in the sidebar's "Use your own network"."""
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.session_state["custom_model"] = model
    at.session_state["custom_key"] = model.name
    at.session_state["model_name"] = f"your network: {model.name}"  # ui.sidebar.custom_choice
    return ok(at.run())


@pytest.fixture(scope="module")
def checkpoint_model(tmp_path_factory):
    """mobilenet_v3_small (not one of the app's own twelve), 4 classes, random weights, as a person
    loads a checkpoint: a .safetensors file, the architecture's name and a labels file."""
    folder = tmp_path_factory.mktemp("own")
    torch.manual_seed(0)
    net = vislib.models.family("mobilenet_v3_small").build(4)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, folder / "mine.safetensors")
    (folder / "labels.txt").write_text("\n".join(LABELS))
    return vislib.load_model(folder / "mine.safetensors", arch="mobilenet_v3_small", labels=folder / "labels.txt",
                             device="cpu")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_on_a_checkpoint_of_a_generated_architecture(checkpoint_model, page):
    at = _start_with(checkpoint_model)
    go(at, f"app_pages/{page}.py")
    assert not at.error, [e.value for e in at.error]
    assert not any("cannot apply" in i.value for i in at.info)
    if page == "predict":
        assert at.subheader[0].value.rsplit(" (", 1)[0] in LABELS


def test_layer_pages_say_in_one_sentence_that_a_transformer_has_no_map():
    torch.manual_seed(0)
    model = vislib.wrap(Tokens(), labels=LABELS, input_size=32, mean=(0.5,) * 3, std=(0.5,) * 3, name="tokens")
    assert model.layers() == [] and model.first_conv == "" and model.classifier == "head.weight"
    at = _start_with(model)
    assert at.subheader[0].value.rsplit(" (", 1)[0] in LABELS  # Predict works
    for page in ("activations", "unit", "patches", "deepdream", "inversion", "texture_style", "atlas", "live"):
        go(at, f"app_pages/{page}.py")
        said = [i.value for i in at.info]
        assert said == ["tokens has no layer that keeps the picture's layout [channels, height, width] (a "
                        "transformer's tokens, say), so this technique cannot apply to it. The other pages work "
                        "on it."], (page, said)
    go(at, "app_pages/attribution.py")  # the CAMs say so in their rows; gradients and occlusion work
    assert any("class activation maps cannot apply" in e.value for e in at.error)
    assert len(at.get("image")) >= 3
    for page in ("filters", "conv_arithmetic", "upsampling"):
        go(at, f"app_pages/{page}.py")
        assert [i.value for i in at.info] == ["tokens has no convolution on the picture, so it has no filters to "
                                              "show. The other pages work on it."], page
    for page in ("class_images", "fooling", "anatomy", "neighbours", "leaderboard"):
        go(at, f"app_pages/{page}.py")
        said = [e.value for e in at.error] + [i.value for i in at.info if "other pages work" in i.value]
        assert not said, (page, said)


def test_every_torchvision_and_timm_architecture_is_one_search_away(monkeypatch, tmp_path):
    """The picker's last entry opens a searchable list of the generated families; offline, one of
    them is one sentence naming the file to put where, and the app keeps working."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("vislib.models.torchvision_zoo.can_reach", lambda host: False)
    import torch.hub

    def refuse(*args, **kwargs):
        raise OSError("no network in this test")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    at = AppTest.from_file("../app.py", default_timeout=120)
    ok(at.run())
    picker = at.selectbox(key="model_name")
    assert len(picker.options) == 13 and picker.options[-1] == "another torchvision or timm network..."
    ok(picker.set_value("another torchvision or timm network...").run())
    every = at.selectbox(key="generated_name")
    assert len(every.options) > 1400 and {"convnext_tiny", "timm:resnet26d"} <= set(every.options)
    assert "Pick a network that loads in the sidebar." in [i.value for i in at.info]
    ok(every.set_value("convnext_tiny").run())
    assert any("convnext_tiny-" in e.value and str(tmp_path) in e.value for e in at.error)
