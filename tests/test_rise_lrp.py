"""RISE (seeded, finding a known region), LRP through Zennit (conservation, equal to Zennit on a
private copy, refused in one sentence where Zennit cannot go) and the edge baseline (the random CAM: tests/test_cam_family.py)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms import functional as TF
from zennit.attribution import Gradient
from zennit.composites import EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer

from vislib import attribution
from vislib.models import Model
from vislib.models.model import Preprocessing
from vislib.runtime import queue


def picture(model, image, size: int) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(image.convert("RGB").resize((size, size))), model.mean, model.std)[None]


# ---------------------------------------------------------------- RISE

def test_rise_is_seeded_whatever_the_batch_size_and_leaves_the_global_generator_alone(lite0, cat):
    x = picture(lite0, cat, 32)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    first = attribution.rise(lite0, x, 281, masks=64, batch_size=32)
    assert torch.equal(torch.rand(3), expected)
    assert first.shape == (32, 32) and first.dtype == torch.float32
    assert torch.equal(attribution.rise(lite0, x, 281, masks=64, batch_size=32), first)
    torch.testing.assert_close(attribution.rise(lite0, x, 281, masks=64, batch_size=24), first, rtol=1e-5, atol=0)
    assert not torch.allclose(attribution.rise(lite0, x, 281, masks=64, batch_size=32, seed=1), first)


class _RegionScore(nn.Module):
    """Class 0's logit grows with the mean of rows 4..11, columns 20..27, from -4 when all of it is
    hidden to 4 when all is seen (the rest of the picture is ignored); class 1's is 0."""

    def forward(self, x):
        region = x[:, :, 4:12, 20:28].mean((1, 2, 3))
        return torch.stack([8 * (region - 0.5), torch.zeros_like(region)], 1)


def test_rise_finds_the_region_a_toy_network_scores():
    net = _RegionScore()
    net.register_forward_pre_hook(queue.guard)
    toy = Model(net=net, name="toy", labels=["region", "rest"], device=torch.device("cpu"), arch="toy",
                preprocessing=Preprocessing(32, 32, "bilinear", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
                first_conv="", classifier="")
    amap = attribution.rise(toy, torch.ones(1, 3, 32, 32), 0, masks=1000, cells=4)
    row, col = divmod(int(amap.argmax()), 32)
    assert 4 <= row < 12 and 20 <= col < 28
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[4:12, 20:28] = True
    assert amap[inside].mean() > amap[~inside].mean() + 0.05


def test_rise_reports_each_batch_with_a_preview_and_stops_when_told(lite0, cat):
    x = picture(lite0, cat, 32)
    seen = []

    def progress(done, total, preview=None):
        seen.append((done, total, preview.size))
        return done < 16
    amap = attribution.rise(lite0, x, 281, masks=64, batch_size=16, progress=progress)
    assert seen == [(16, 64, (32, 32))]  # stopped after the first batch
    assert torch.isfinite(amap).all() and amap.max() > 0


@pytest.mark.parametrize("params, message", [
    ({"masks": 0}, "The parameter masks must be at least 1, not 0."),
    ({"cells": 0}, "The parameter cells must be at least 1, not 0."),
    ({"keep": 1.5}, "The parameter keep must be above 0 and at most 1, not 1.5."),
    ({"window": 8}, "RISE has no parameter 'window'; its parameters are: masks, cells, keep, seed, batch_size."),
])
def test_rise_parameter_mistakes_are_one_sentence(params, message, lite0, cat):
    with pytest.raises(ValueError) as err:
        attribution.attribute(lite0, picture(lite0, cat, 32), "rise", 281, **params)
    assert str(err.value) == message


def test_rise_parameters_parse_from_text():
    rise = attribution.get_method("rise")
    assert rise.parse(["masks=500", "keep=0.25"]) == {"masks": 500, "keep": 0.25}
    with pytest.raises(ValueError) as err:
        rise.parse(["keep=2"])
    assert str(err.value) == "The parameter keep takes a number above 0 and at most 1, not '2'."


# ---------------------------------------------------------------- LRP

def test_lrp_adds_up_to_the_score_and_equals_zennit_on_a_private_copy(random_model, cat):
    model = random_model("resnet18")
    x = picture(model, cat, 64)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    kinds = [type(m) for m in model.net.modules()]
    with torch.no_grad(), model.running() as net:
        score, bias = float(net(x)[0, 7]), float(net.fc.bias[7])
    relevance = attribution.attribute(model, x, "lrp", 7)
    assert relevance.shape == (64, 64)
    # Zennit's conservation: all of the score but the classifier's bias (the convolutions have none,
    # and the batch norms of a freshly made ResNet shift by 0)
    assert float(relevance.sum()) == pytest.approx(score - bias, rel=1e-3)
    with model.running() as net:
        twin = copy.deepcopy(net)
    twin._forward_pre_hooks.clear()
    for m in twin.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    with Gradient(model=twin, composite=EpsilonPlusFlat(canonizers=[ResNetCanonizer()])) as attributor:
        _, reference = attributor(x.clone().requires_grad_(), torch.eye(1000)[[7]] * score)
    torch.testing.assert_close(relevance, reference[0].sum(0), rtol=1e-4, atol=1e-6)
    after = model.net.state_dict()  # the shared network: weights, modules and hooks as found
    assert all(torch.equal(before[k], after[k]) for k in before) and kinds == [type(m) for m in model.net.modules()]
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.net.modules())


def test_lrp_follows_weights_changed_in_place(random_model, cat):
    model = random_model("resnet18")
    x = picture(model, cat, 64)
    first = attribution.lrp(model, x, 7)
    assert torch.equal(attribution.lrp(model, x, 7), first)  # the cached copy
    with model.running() as net, torch.no_grad():
        net.fc.weight.mul_(2)  # as the randomisation check's reset_parameters: in place
    torch.testing.assert_close(attribution.lrp(model, x, 7), 2 * first, rtol=1e-4, atol=1e-6)


def test_lrp_on_fashion_cnn_equals_zennit_with_its_batch_norms_merged(cat):
    import vislib
    from zennit.canonizers import SequentialMergeBatchNorm
    model = vislib.load_model("fashion_cnn", device="cpu")
    x = picture(model, cat.convert("L"), 28)
    with torch.no_grad(), model.running() as net:
        out = net(x)[0]
        twin = copy.deepcopy(net)
    twin._forward_pre_hooks.clear()
    for m in twin.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    target = int(out.argmax())
    relevance = attribution.lrp(model, x, target)
    with Gradient(model=twin, composite=EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])) as attributor:
        _, reference = attributor(x.clone().requires_grad_(), torch.eye(10)[[target]] * out[target])
    torch.testing.assert_close(relevance, reference[0].sum(0), rtol=1e-4, atol=1e-7)
    assert 0 < float(relevance.sum()) <= float(out[target])  # the biases keep the rest


def test_lrp_refuses_networks_zennit_cannot_canonise_in_one_sentence(lite0, cat):
    with pytest.raises(ValueError) as err:
        attribution.attribute(lite0, picture(lite0, cat, 32), "lrp", 281)
    assert str(err.value) == (
        "LRP cannot explain efficientnet_lite0: Zennit has no canonizer for its blocks' skip connections, so its "
        "relevance would not add up to the score; it works on alexnet, vgg16, vgg19, resnet18, resnet50, googlenet, "
        "squeezenet1_1, fashion_cnn.")


# ---------------------------------------------------------------- baselines

def test_edges_is_the_sobel_magnitude_of_the_grey_picture(lite0):
    pixels = torch.zeros(3, 24, 32)
    pixels[:, :, 16:] = 1.0  # black left, white right: one vertical edge between columns 15 and 16
    x = lite0.preprocessing.normalise(pixels)[None]
    edges = attribution.attribute(lite0, x, "edges")
    assert edges.shape == (24, 32) and edges.dtype == torch.float32
    # Sobel's x kernel over a 0 -> 255 step: (1 + 2 + 1) * 255 on both columns of the step
    assert np.allclose(edges[1:-1, 15:17].numpy(), 1020) and float(edges[:, :14].abs().max()) == 0
    assert float(edges[:, 18:].abs().max()) == 0
    with pytest.raises(ValueError, match="The class 1000 does not exist: efficientnet_lite0 has classes 0 to 999."):
        attribution.edges(lite0, x, 1000)


def test_the_registry_groups_the_new_methods_after_the_first_seven():
    assert list(attribution.METHODS)[:7] == ["saliency", "guided_backprop", "smoothgrad", "integrated_gradients",
                                             "gradcam", "guided_gradcam", "occlusion"]
    groups = attribution.grouped()
    assert list(groups) == ["gradients", "cams", "perturbation", "relevance", "baselines"]
    assert groups["cams"][2:] == ["gradcam_plus_plus", "xgradcam", "layercam", "hirescam", "scorecam",
                                  "ablationcam", "eigencam"]
    assert groups["perturbation"] == ["occlusion", "rise"] and groups["relevance"] == ["lrp"]
    assert groups["baselines"] == ["random", "edges"]
    slow = {name for name, m in attribution.METHODS.items() if not m.fast}
    assert slow == {"smoothgrad", "integrated_gradients", "occlusion", "scorecam", "ablationcam", "rise"}
