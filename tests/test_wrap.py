"""vislib.wrap: any nn.Module that maps pictures to logits becomes a Model every vislib function takes."""
import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import vislib
from vislib import activations, attribution, synthesis
from vislib.data import features
from vislib.data.collections import Collection
from vislib.models import ModelError


class Block(nn.Module):
    """A residual block of the person's own design: one catalogue entry, not four."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class Little(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.stage = nn.Sequential(Block(16), Block(16))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))

    def forward(self, x):
        return self.head(self.stage(self.pool(self.stem(x))))


@pytest.fixture(scope="module")
def little():
    torch.manual_seed(0)
    net = Little().eval()
    for m in net.modules():  # batch norms with real statistics, so the maps are not trivially flat
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def model(little):
    import copy
    return vislib.wrap(copy.deepcopy(little), labels=list("vwxyz"), input_size=64, mean=(0.5,) * 3, std=(0.25,) * 3,
                       name="little", device="cpu")


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8))


def test_found_catalogue_first_convolution_and_classifier(model):
    assert [(i.name, i.kind) for i in model.layers()] == [
        ("stem.2", "conv"), ("pool", "pool"), ("stage.0", "block"), ("stage.1", "block")]
    assert [i.channels for i in model.layers()] == [16] * 4
    assert [i.stride for i in model.layers()] == [2, 4, 4, 4]
    assert [i.receptive_field for i in model.layers()] == [5, 7, 23, 39]
    assert (model.first_conv, model.classifier) == ("stem.0", "head.2.weight")
    assert model.arch == "custom:little" and model.labels == list("vwxyz") and model.input_size == 64


def test_probabilities_equal_the_module_softmax(model, little):
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        expected = little(x).softmax(1)
    assert torch.allclose(model.probabilities(x), expected, atol=1e-5)


def test_preprocessing_is_the_given_size_and_normalisation(model, picture):
    x = model.preprocess(picture)
    assert x.shape == (3, 64, 64)
    assert float(x.min()) >= -2.0 - 1e-6 and float(x.max()) <= 2.0 + 1e-6  # (0..1 - 0.5) / 0.25


def test_gradcam_equals_pytorch_grad_cam_at_the_found_layer(model, little, picture):
    x = model.preprocess(picture)[None]
    ours = attribution.attribute(model, x, "gradcam", 2).numpy()
    theirs = GradCAM(little, [little.stage[1]])(x, targets=[ClassifierOutputTarget(2)])[0]
    ours = ours / max(ours.max(), 1e-12)
    theirs = theirs / max(theirs.max(), 1e-12)
    assert attribution.gradcam_layer(model) == "stage.1"
    assert np.abs(ours - theirs).max() < 1e-3


def test_the_other_vislib_functions_take_it(model, picture):
    x = model.preprocess(picture)[None]
    assert activations.first_layer_weights(model).shape == (16, 3, 5, 5)
    assert activations.activation_maps(model, picture, "stage.0").shape == (16, 16, 16)
    for method in ("saliency", "occlusion", "integrated_gradients"):
        amap = attribution.attribute(model, x, method, 1)
        assert amap.shape == (64, 64) and torch.isfinite(amap).all() and float(amap.abs().max()) > 0
    pictures = Collection("two", "wrap-two", [picture, picture.rotate(90)], lambda p: p, [None, None], [], "two test pictures")
    feats = features.extract(model, pictures)
    assert feats.shape == (2, 16) and np.abs(feats[0] - feats[1]).max() > 0
    image = synthesis.class_visualization(model, 3, steps=4, seed=0)
    assert image.size == (64, 64)


@pytest.mark.parametrize("kwargs, sentence", [
    ({"labels": ["a", "b"]}, "The labels file has 2 names but the network has 5 classes."),
    ({"input_size": 0}, "The input size must be a whole number of pixels from 8 to 4096, not 0."),
    ({"mean": (0.5, 0.5)}, "mean and std take three numbers each (red, green, blue), std above zero."),
    ({"std": (0.5, 0.0, 0.5)}, "mean and std take three numbers each (red, green, blue), std above zero."),
])
def test_bad_arguments_are_one_sentence(little, kwargs, sentence):
    with pytest.raises(ModelError) as err:
        vislib.wrap(little, **kwargs)
    assert str(err.value) == sentence


def test_a_module_that_is_not_a_classifier_is_one_sentence():
    with pytest.raises(ModelError, match=r"^Sequential must map a batch of pictures to class scores \[N, classes\], "
                                         r"but it returned a tensor of shape \[1, 4, 32, 32\]\.$"):
        vislib.wrap(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), input_size=32)
    with pytest.raises(ModelError, match="^Linear could not run on a picture of 32 x 32 pixels"):
        vislib.wrap(nn.Linear(10, 2), input_size=32)
    with pytest.raises(ModelError, match="^wrap\\(\\) takes a torch.nn.Module, not str.$"):
        vislib.wrap("resnet18")
