"""A person brings their own trained network, in Debian's Chromium: a checkpoint of a torchvision
architecture the app has never listed by hand, then a whole-network ONNX file of a custom CNN."""
import re

import torch
from playwright.sync_api import expect
from safetensors.torch import save_file
from steps import idle
from torch import nn

import vislib

LABELS = ["apple", "boat", "cloud", "dog"]


def _sidebar_form(page):
    idle(page)
    page.get_by_text("Use your own network").click()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("button", name="Load network")).to_be_visible()
    return sidebar


def _load(page, sidebar, file, labels) -> None:
    sidebar.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files(str(file))
    sidebar.get_by_test_id("stFileUploader").filter(has_text="Class names").locator(
        "input[type=file]").set_input_files(str(labels))
    sidebar.get_by_role("button", name="Load network").click()


def _labels(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(LABELS))
    return path


def test_a_checkpoint_of_any_torchvision_architecture(page, tmp_path):
    torch.manual_seed(0)
    net = vislib.models.family("mobilenet_v3_small").build(4)
    weights = tmp_path / "my mobilenet.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, weights)
    expect(page.get_by_text("What the network sees")).to_be_visible()
    sidebar = _sidebar_form(page)
    arch = sidebar.get_by_role("combobox", name="Architecture")
    arch.click()
    arch.press_sequentially("mobilenet_v3_sm")  # hundreds of names: a person types to find theirs
    page.get_by_role("option", name="mobilenet_v3_small", exact=True).click()
    expect(arch).to_have_value("mobilenet_v3_small")
    _load(page, sidebar, weights, _labels(tmp_path))
    expect(page.get_by_role("heading", name=re.compile(r"^(apple|boat|cloud|dog) \("))).to_be_visible()
    expect(sidebar.get_by_role("combobox", name="Network")).to_have_value("your network: my mobilenet.safetensors")
    page.get_by_role("link", name="Activation maps").click()
    expect(page.get_by_text(re.compile(r"one cell covers \d+ input pixels"))).to_be_visible()
    page.get_by_role("link", name="Attribution").click()
    idle(page)
    expect(page.get_by_text("Grad-CAM").first).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stAlertContentError").count() == 0


def test_a_wrong_file_is_one_sentence_and_the_app_keeps_working(page, tmp_path):
    expect(page.get_by_text("What the network sees")).to_be_visible()
    sidebar = _sidebar_form(page)
    sidebar.get_by_text("A whole-network file (.pt2, ONNX)").click()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07this is not a network")
    _load(page, sidebar, broken, _labels(tmp_path))
    expect(sidebar.get_by_test_id("stAlertContentError")).to_have_count(1)
    assert page.get_by_test_id("stException").count() == 0
    expect(page.get_by_role("heading", name=re.compile(r"cat \("))).to_be_visible()  # still the zoo's network


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def test_an_onnx_file_of_a_custom_network(page, tmp_path):
    torch.manual_seed(0)
    net = Custom().eval()
    file = tmp_path / "custom.onnx"
    torch.onnx.export(net, (torch.randn(2, 3, 64, 64),), str(file), dynamic_shapes=({0: torch.export.Dim("batch")},),
                      external_data=False)  # one file to upload: torch 2.14 puts the weights beside it by default
    expect(page.get_by_text("What the network sees")).to_be_visible()
    sidebar = _sidebar_form(page)
    sidebar.get_by_text("A whole-network file (.pt2, ONNX)").click()
    sidebar.get_by_label("Input size (pixels)").fill("64")
    _load(page, sidebar, file, _labels(tmp_path))
    expect(page.get_by_role("heading", name=re.compile(r"^(apple|boat|cloud|dog) \("))).to_be_visible()
    expect(page.get_by_text("What the network sees: 64 x 64 px")).to_be_visible()
    page.get_by_role("link", name="First-layer filters").click()
    expect(page.get_by_text("8 filters of 3 x 3 pixels")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
