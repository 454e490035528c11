"""Feature extraction: the penultimate vector per family, pooled conv layers, the disk cache, pixels."""
import copy

import numpy as np
import pytest
import torch

from vislib import datasets, features
from vislib.models import fingerprint


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def three():
    return datasets.open_collection("samples").subset([0, 1, 2])


def _batch(model, collection):
    return torch.stack([model.preprocess(collection[i][0]) for i in range(len(collection))]).to(model.device)


def test_penultimate_of_efficientnet_is_timms_pre_logits(lite0, three):
    got = features.extract(lite0, three, batch_size=2)
    with torch.inference_mode():
        want = lite0.net.forward_head(lite0.net.forward_features(_batch(lite0, three)), pre_logits=True)
    assert got.shape == (3, 1280) and got.dtype == np.float32
    np.testing.assert_allclose(got, want.cpu().numpy(), rtol=1e-4, atol=1e-5)


def test_penultimate_of_resnet_is_the_input_of_fc(random_model, three):
    model = random_model("resnet18")
    headless = copy.deepcopy(model.net)
    headless.fc = torch.nn.Identity()
    with torch.inference_mode(), model.running():  # the copy carries the shared network's guard
        want = headless(_batch(model, three)).cpu().numpy()
    np.testing.assert_allclose(features.extract(model, three), want, rtol=1e-4, atol=1e-5)


def test_a_conv_layer_is_averaged_over_space(lite0, three):
    from vislib.activations import capture
    _, seen = capture(lite0, _batch(lite0, three), ["blocks.2.0"])
    got = features.extract(lite0, three, layer="blocks.2.0")
    np.testing.assert_allclose(got, seen["blocks.2.0"].mean((2, 3)).numpy(), rtol=1e-4, atol=1e-5)


def test_the_second_call_reads_the_cache_without_running_the_network(random_model, three):
    model = random_model("squeezenet1_1")
    calls = []
    model.net.register_forward_pre_hook(lambda *a: calls.append(1))
    progress = []
    first = features.extract(model, three, batch_size=2, progress=lambda done, total: progress.append((done, total)))
    assert len(calls) == 2 and progress == [(2, 3), (3, 3)] and first.shape == (3, 512)
    second = features.extract(model, three, batch_size=2)
    assert len(calls) == 2 and np.array_equal(first, second)
    features.extract(model, three, layer="features.3")  # another layer is another cache entry
    features.extract(model, three.subset([0, 1]))        # and another collection too
    assert len(calls) == 4


def test_changed_weights_are_not_served_from_the_cache(random_model, three):
    a, b = random_model("resnet18"), random_model("resnet18")
    with torch.no_grad():
        b.net.fc.weight.add_(1.0)
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a) == fingerprint(random_model("resnet18"))


def test_an_unknown_layer_is_named(random_model, three):
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        features.extract(random_model("resnet18"), three, layer="nope")


def test_pixels_are_centre_square_thumbnails(three):
    got = features.pixels(three, size=16)
    assert got.shape == (3, 16 * 16 * 3) and 0 <= got.min() and got.max() <= 1
    want = np.asarray(features.thumbnail(three[1][0], 16), dtype=np.float32).reshape(-1) / 255
    np.testing.assert_array_equal(got[1], want)
    assert np.array_equal(features.pixels(three, size=16), got)
