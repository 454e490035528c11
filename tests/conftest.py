"""Shared fixtures of the engine's tests: the default network, the sample cat, an offline torch cache."""
from __future__ import annotations

import urllib.error

import pytest
import torch

import vislib
from vislib.images import sample_images
from vislib.models import family, torchvision_zoo


@pytest.fixture(scope="session", autouse=True)
def full_float32():
    """On a GPU cuDNN convolves in TF32 (a 10-bit mantissa) by default, so two batchings of the
    same pictures differ in the third digit; the tests compare with references in float32."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


@pytest.fixture(scope="session")
def lite0() -> vislib.Model:
    """The default network with its real weights (shared: never change it in a test)."""
    return vislib.load_model()


@pytest.fixture(scope="session")
def cat():
    """skimage's Chelsea, a tabby cat."""
    return sample_images()["chelsea (cat)"]()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME with no network: returns the folder torchvision's weights go to."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torchvision_zoo, "can_reach", lambda host: False)

    def no_download(url, *args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")  # read from the environment at call time
    return folder


@pytest.fixture
def random_model():
    """A factory: a zoo architecture as a Model with random weights, without loading any file."""
    def make(arch: str, num_classes: int = 1000) -> vislib.Model:
        fam = family(arch)
        torch.manual_seed(0)
        return fam.assemble(fam.build(num_classes), [f"class {i}" for i in range(num_classes)], "cpu")
    return make


@pytest.fixture
def flush_denormals():
    """Randomly initialised EfficientNet-Lites fade into denormal floats, which are 20x slower on a CPU."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(scope="module")
def random_fashion():
    """fashion_cnn's architecture with random weights (geometry and arithmetic need no training)."""
    from vislib.data.collections import FASHION_CLASSES
    fam = family("fashion_cnn")
    torch.manual_seed(0)
    return fam.assemble(fam.build(10), list(FASHION_CLASSES), "cpu")


@pytest.fixture(scope="module")
def noise_pictures(tmp_path_factory):
    """A factory: `n` random 28 x 28 grey PNGs in a flat folder, opened as a collection."""
    import numpy as np
    from PIL import Image

    from vislib.data.collections import open_collection

    def make(n: int, seed: int = 0):
        folder = tmp_path_factory.mktemp("noise")
        rng = np.random.default_rng(seed)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i:03d}.png")
        return open_collection(folder)
    return make
