"""The classroom network: committed weights, accuracy, its place in the zoo, reproducible training."""
import json

import numpy as np
import pytest
import torch

import vislib
from vislib import activations, datasets, fashion, models

HAVE_DATA = (datasets.DEBIAN_FASHION / "t10k-images-idx3-ubyte.gz").exists()


@pytest.fixture(scope="module")
def model():
    return vislib.load_model("fashion_cnn")


def test_it_is_in_the_zoo_and_ready(model):
    assert "fashion_cnn" in vislib.list_models()
    assert models.availability("fashion_cnn").state == "ready"
    assert model.labels == datasets.FASHION_CLASSES and model.input_size == 28
    assert [l.name for l in model.layers()] == ["relu1", "pool1", "conv2", "pool2", "conv3"]
    assert model.layer("relu1").receptive_field == 7 and model.layer("conv3").size == (7, 7)


def test_the_first_layer_is_large_grey_filters(model):
    weights = activations.first_layer_weights(model)
    assert weights.shape == (32, 1, 7, 7)
    tile = np.asarray(activations.filter_tiles(weights)[0])
    assert tile.shape == (7, 7, 3) and (tile[..., 0] == tile[..., 1]).all() and (tile[..., 1] == tile[..., 2]).all()
    assert activations.filter_responses(model, datasets.open_collection("samples")[0][0]).shape == (32, 28, 28)


def test_weights_are_small_and_their_report_is_committed():
    assert fashion.WEIGHTS.stat().st_size <= 2 * 2**20
    report = json.loads(fashion.REPORT.read_text())
    assert report["test_accuracy"] >= 0.91 and {"epochs", "seed", "seconds"} <= set(report)


@pytest.mark.skipif(not HAVE_DATA, reason="Debian's dataset-fashion-mnist is not installed")
def test_test_accuracy_is_at_least_91_percent_and_matches_the_report(model):
    images, labels, _ = datasets.fashion_mnist("test")
    with model.running() as net:
        acc = fashion.accuracy(net, images, labels)
    assert acc >= 0.91
    assert acc == pytest.approx(json.loads(fashion.REPORT.read_text())["test_accuracy"], abs=1e-4)


@pytest.mark.skipif(not HAVE_DATA, reason="Debian's dataset-fashion-mnist is not installed")
def test_the_zoo_preprocessing_is_the_training_normalisation(model):
    collection = datasets.open_collection("fashion-mnist").subset(range(200))
    via_zoo = model.probabilities(torch.stack([model.preprocess(collection[i][0]) for i in range(200)]))
    images, _, _ = datasets.fashion_mnist("test")
    with torch.no_grad(), model.running() as net:
        direct = net(fashion._tensors(images[:200])).softmax(1)
    torch.testing.assert_close(via_zoo, direct, atol=1e-4, rtol=1e-4)


def test_training_is_reproducible_with_a_seed(monkeypatch):
    rng = np.random.default_rng(0)
    tiny = (rng.integers(0, 256, (256, 28, 28), dtype=np.uint8), rng.integers(0, 10, 256), "tiny")
    monkeypatch.setattr(datasets, "fashion_mnist", lambda split="test": tiny)
    (a, report), (b, _), (c, _) = (fashion.train(epochs=1, seed=s, batch_size=64) for s in (3, 3, 4))
    assert report["epochs"] == 1 and 0 <= report["test_accuracy"] <= 1
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.state_dict()["conv1.weight"], c.state_dict()["conv1.weight"])
