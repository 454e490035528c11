"""Whole-network files (vislib.models.exported): torch.export's .pt2 and ONNX, exported at test time.

Four small custom networks (a plain CNN, a tiny ConvNeXt block with both GELUs and LayerNorm, a
residual one, a mobile one with SiLU, hardswish and squeeze-excite) go through today's
torch.export.save and torch.onnx.export; the loaded modules must agree with the originals in
probabilities, hooked maps, input gradients and Grad-CAM. Then the hostile files: each rule of
the loader has its attack, and where the attack works on the library itself, a test shows that
too. The builders of those files are used by hostile_files.py as well.
"""
from __future__ import annotations

import functools
import io
import json
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_checkpoints import _evil_files, one_sentence
from torch import nn
from torch.nn import functional as F

import vislib
from vislib.models import exported
from vislib.models.checkpoints import ModelError
from vislib.models.exported import GreyInput, read_network

SIZE, CLASSES = 32, 5
DYNAMIC = ({0: torch.export.Dim("batch")},)


# ---------------------------------------------------------------- the networks

def _bn(c: int) -> nn.BatchNorm2d:
    """Batch norm with statistics of its own, so that it is no identity (and ONNX's folding shows)."""
    bn = nn.BatchNorm2d(c)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    return bn


class Plain(nn.Module):
    def __init__(self, channels: int = 3):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(channels, 8, 3, padding=1), _bn(8)
        self.relu, self.pool = nn.ReLU(), nn.MaxPool2d(2)
        self.conv2, self.fc = nn.Conv2d(8, 16, 3, padding=1), nn.Linear(16 * 8 * 8, CLASSES)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc(x.view(x.size(0), -1))  # a reshape that keeps the batch dynamic


class Block(nn.Module):
    def __init__(self, d: int, approximate: str):
        super().__init__()
        self.dw, self.norm = nn.Conv2d(d, d, 7, padding=3, groups=d), nn.LayerNorm(d)
        self.pw1, self.act, self.pw2 = nn.Linear(d, 4 * d), nn.GELU(approximate=approximate), nn.Linear(4 * d, d)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        return x + self.pw2(self.act(self.pw1(self.norm(y)))).permute(0, 3, 1, 2)


class Next(nn.Module):
    """A tiny ConvNeXt: GELU in both forms (ONNX's opset-20 Gelu), LayerNorm, residual sums."""

    def __init__(self):
        super().__init__()
        self.stem, self.block1, self.block2 = nn.Conv2d(3, 16, 4, stride=4), Block(16, "none"), Block(16, "tanh")
        self.head = nn.Linear(16, CLASSES)

    def forward(self, x):
        return self.head(self.block2(self.block1(self.stem(x))).mean((2, 3)))


class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), _bn(8)
        self.fc = nn.Linear(8, CLASSES)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(x + self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.pool, self.fc1, self.fc2 = nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, 4, 1), nn.Conv2d(4, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(F.silu(self.fc1(self.pool(x)))))


class Mobile(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.act1 = nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.Hardswish()
        self.dw, self.act2, self.se = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.SiLU(), SqueezeExcite(16)
        self.drop, self.fc = nn.Dropout(0.2), nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.se(self.act2(self.dw(self.act1(self.conv1(x)))))
        return self.fc(self.drop(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))


NETWORKS = {"plain": Plain, "next": Next, "res": Res, "mobile": Mobile}
# A convolution unit in each, under the same name in the original, the .pt2 and the ONNX module
# (ONNX folds a batch norm into the convolution before it: "bn2" is that convolution there).
LAYER = {"plain": "conv2", "next": "block1.dw", "res": "bn2", "mobile": "dw"}
CASES = [(net, kind) for net in NETWORKS for kind in ("pt2", "onnx")]


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return NETWORKS[name]().eval()


def example(n: int = 2, channels: int = 3) -> torch.Tensor:
    return torch.randn(n, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(n))


def export(net: nn.Module, path: Path, dynamic=True, x: torch.Tensor | None = None) -> Path:
    """`net` written by today's torch: .pt2 through torch.export.save, .onnx through torch.onnx.export."""
    x = example() if x is None else x
    if path.suffix == ".pt2":
        torch.export.save(torch.export.export(net, (x,), dynamic_shapes=DYNAMIC if dynamic else None), path)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), str(path), dynamic_shapes=DYNAMIC if dynamic else None, verbose=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[tuple[str, str], Path]:
    folder = tmp_path_factory.mktemp("exported")
    return {(net, kind): export(build(net), folder / f"{net}.{kind}") for net, kind in CASES}


@pytest.fixture(scope="module")
def loaded(files) -> dict[tuple[str, str], exported.Network]:
    return {case: read_network(path) for case, path in files.items()}


# ---------------------------------------------------------------- they work like the originals

@pytest.mark.parametrize("net,kind", CASES)
def test_the_loaded_network_gives_the_original_probabilities(net, kind, loaded):
    network, original = loaded[net, kind], build(net)
    assert (network.kind, network.channels, network.size) == (kind, 3, (SIZE, SIZE))
    assert not network.module.training
    with torch.no_grad():
        for n in (3, 1, 5):  # one loaded module, batches of every size
            x = example(n)
            torch.testing.assert_close(network.module(x).softmax(1), original(x).softmax(1), atol=1e-4, rtol=0)


@pytest.mark.parametrize("net,kind", CASES)
def test_a_hook_on_a_named_layer_fires_once_per_forward(net, kind, loaded):
    module, original = loaded[net, kind].module, build(net)
    seen, expected = [], []
    handles = [dict(module.named_modules())[LAYER[net]].register_forward_hook(lambda m, i, o: seen.append(o)),
               original.get_submodule(LAYER[net]).register_forward_hook(lambda m, i, o: expected.append(o))]
    try:
        with torch.no_grad():
            for n in (2, 3):
                module(example(n))
                original(example(n))
    finally:
        for h in handles:
            h.remove()
    assert [o.shape for o in seen] == [o.shape for o in expected] and len(seen) == 2
    for got, want in zip(seen, expected):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("net,kind", CASES)
def test_gradients_with_respect_to_the_input_match(net, kind, loaded):
    module, original = loaded[net, kind].module, build(net)
    grads = []
    for m in (module, original):
        x = example(3).requires_grad_(True)
        m(x)[:, 2].sum().backward()
        grads.append(x.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("net,kind", CASES)
def test_grad_cam_matches_the_original(net, kind, loaded):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    module, original = loaded[net, kind].module, build(net)
    maps = []
    for m in (module, original):
        with GradCAM(model=m, target_layers=[dict(m.named_modules())[LAYER[net]]]) as cam:
            maps.append(cam(example(2), targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(3)]))
    assert maps[0].shape == (2, SIZE, SIZE) and maps[0].max() > 0
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-4)


def test_layers_keep_the_names_of_the_original_modules(loaded):
    """.pt2: exactly the original's (unflatten); ONNX: the module path torch.onnx recorded, an
    operation of a module that became several nodes under it (a Linear's MatMul in it)."""
    pt2 = {n for n, _ in loaded["next", "pt2"].module.named_modules()}
    assert {n for n, _ in build("next").named_modules()} == pt2
    onnx_names = {n for n, _ in loaded["next", "onnx"].module.named_modules()}
    assert {"stem", "block1.dw", "block1.norm", "block1.act", "block2.act", "block1.pw1", "block1.pw1.matmul",
            "head"} <= onnx_names
    assert {"conv1", "act1", "dw", "act2", "se.fc1", "se.fc2", "se.gate", "fc"} <= \
        {n for n, _ in loaded["mobile", "onnx"].module.named_modules()}
    assert isinstance(dict(loaded["plain", "onnx"].module.named_modules())["conv2"], nn.Conv2d)
    assert isinstance(dict(loaded["plain", "pt2"].module.named_modules())["conv2"], nn.Conv2d)  # pt2_layers.py


def test_onnx_nodes_without_the_exporters_metadata_keep_their_own_names():
    import onnx
    from onnx import helper
    model = onnx.load_model_from_string(tiny_onnx())
    model.graph.node[1].ClearField("name")  # an unnamed Relu, and a second one after it
    model.graph.node.insert(2, helper.make_node("Relu", ["r"], ["r2"]))
    model.graph.node[3].input[0] = "r2"
    names = {n for n, _ in read_network(model.SerializeToString()).module.named_modules()}
    assert {"conv", "Relu", "Relu_2", "pool", "flat", "fc"} <= names


def test_every_kind_of_source_gives_the_same_network(files, tmp_path):
    """A path (ONNX weights beside it: torch.onnx.export's default), or bytes and uploads of a whole file."""
    import onnx
    assert (files["res", "onnx"].parent / "res.onnx.data").exists()
    one_file = tmp_path / "res.onnx"  # as torch.onnx.export(..., external_data=False) writes it
    onnx.save(onnx.load(files["res", "onnx"]), one_file)
    assert not (tmp_path / "res.onnx.data").exists()
    x = example(2)
    for kind, path, whole in (("pt2", files["res", "pt2"], True), ("onnx", files["res", "onnx"], False),
                              ("onnx", one_file, True)):
        data = path.read_bytes()
        upload = io.BytesIO(data)
        upload.name = f"mine.{kind}"
        for source in (path, str(path)) + ((data, bytearray(data), upload) if whole else ()):
            network = read_network(source)  # bytes: the kind from the content
            assert network.kind == kind
            with torch.no_grad():
                torch.testing.assert_close(network.module(x), build("res")(x), atol=1e-4, rtol=0)


def test_a_one_channel_network_takes_rgb_pictures(tmp_path):
    torch.manual_seed(0)
    grey = Plain(channels=1).eval()
    x = example(3)
    for kind in ("pt2", "onnx"):
        network = read_network(export(grey, tmp_path / f"grey.{kind}", x=example(2, channels=1)))
        assert network.channels == 1 and isinstance(network.module, GreyInput)
        assert "net.conv2" in dict(network.module.named_modules())
        with torch.no_grad():
            torch.testing.assert_close(network.module(x), grey(x.mean(1, keepdim=True)), atol=1e-4, rtol=0)


def test_load_exported_makes_a_model_of_the_declared_size(files):
    for kind in ("pt2", "onnx"):
        model = vislib.load_model(str(files["mobile", kind]))  # the registry sends .pt2 / .onnx here
        assert (model.name, model.input_size, model.mean) == (f"mobile.{kind}", SIZE, (0.485, 0.456, 0.406))
        assert model.labels == [f"class {i}" for i in range(CLASSES)] and model.first_conv == "conv1"
        torch.testing.assert_close(model.probabilities(example(3)), build("mobile")(example(3)).softmax(1),
                                   atol=1e-4, rtol=0)
        named = exported.load_exported(files["mobile", kind], labels=list("abcde"), input_size=SIZE,
                                       mean=(0.5,) * 3, std=(0.25,) * 3, name="mine")
        assert (named.name, named.std, named.labels[4]) == ("mine", (0.25,) * 3, "e")
        with pytest.raises(ModelError) as err:  # its size is fixed
            vislib.load_model(str(files["mobile", kind]), input_size=48)
        assert one_sentence(str(err.value)) and "exactly 32 x 32 pixels" in str(err.value)


class Geometry(nn.Module):
    """Every argument the receptive-field recurrence and the anatomy table read: a strided, padded
    stem in a Sequential, a dilated grouped convolution, a depthwise one, max and average pools
    with padding and ceil_mode, batch norm, in-place and parametrised activations, a linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), _bn(8), nn.ReLU(inplace=True))
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.conv2, self.bn2 = nn.Conv2d(8, 16, 3, padding=2, dilation=2, groups=4, bias=False), _bn(16)
        self.act2, self.pool2 = nn.ReLU6(), nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.conv3, self.act3 = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.LeakyReLU(0.1)
        self.gap, self.drop, self.fc = nn.AdaptiveAvgPool2d(1), nn.Dropout(0.1), nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.pool2(self.act2(self.bn2(self.conv2(self.pool1(self.stem(x))))))
        return self.fc(self.drop(torch.flatten(self.gap(self.act3(self.conv3(x))), 1)))


def _geometry() -> nn.Module:
    torch.manual_seed(0)
    return Geometry().eval()


@pytest.fixture(scope="module")
def geometry(tmp_path_factory) -> dict[str, vislib.Model]:
    """The original wrapped, and its .pt2 and ONNX files loaded (other names: anatomy's cache keys differ)."""
    folder = tmp_path_factory.mktemp("geometry")
    models = {kind: exported.load_exported(export(_geometry(), folder / f"geometry.{kind}")) for kind in ("pt2", "onnx")}
    return {"original": vislib.wrap(_geometry(), input_size=SIZE, name="geometry"), **models}


def test_pt2_layers_are_real_modules_with_the_originals_geometry_and_anatomy(geometry):
    """Each single-operation InterpreterModule became its torch.nn class again, so the catalogue,
    receptive fields, anatomy rows and first-layer filters are exactly the original's."""
    from vislib.activations import first_layer_weights
    from vislib.anatomy import anatomy
    original, pt2 = geometry["original"], geometry["pt2"]
    assert {n: type(m) for n, m in pt2.net.named_modules() if n} == \
        {n: type(m) for n, m in original.net.named_modules() if n}
    assert repr(pt2.net.stem) == repr(original.net.stem) and repr(pt2.net.pool1) == repr(original.net.pool1)
    assert pt2.layers() == original.layers() and [layer.kind for layer in pt2.layers()] == \
        ["conv", "pool", "conv", "pool", "conv"]
    assert [(i.stride, i.receptive_field) for i in pt2.layers()] == [(2, 5), (4, 9), (4, 25), (8, 33), (8, 49)]
    assert (pt2.first_conv, pt2.classifier) == (original.first_conv, original.classifier) == ("stem.0", "fc.weight")
    rows = anatomy(pt2)
    assert rows == anatomy(original) and sum(r["macs"] for r in rows) == 153600 + 23328 + 3600 + 80
    torch.testing.assert_close(first_layer_weights(pt2), _geometry().stem[0].weight, atol=0, rtol=0)
    torch.testing.assert_close(pt2.probabilities(example(3)), _geometry()(example(3)).softmax(1), atol=1e-5, rtol=0)


def test_onnx_layers_have_the_originals_geometry_where_the_exporter_kept_the_layer(geometry):
    """onnx2torch gives real modules too, and the catalogue is the original's. torch.onnx folds a
    batch norm into the convolution before it (the module then takes the norm's name, stem.1 and
    bn2, and its weights are scaled: gamma / sqrt(var + eps) per filter, plus a bias), writes the
    adaptive pool as a ReduceMean and the flatten as a Reshape (named view), and leaves dropout out."""
    from vislib.activations import first_layer_weights
    from vislib.anatomy import anatomy
    original, onnx_model = geometry["original"], geometry["onnx"]
    assert onnx_model.layers() == original.layers()
    rows, want = {r["name"]: r for r in anatomy(onnx_model)}, {r["name"]: r for r in anatomy(original)}
    for name in ("stem.2", "pool1", "act2", "pool2", "conv3", "act3", "fc"):
        assert rows[name] == want[name], name
    for folded, conv, bias in (("stem.1", "stem.0", 0), ("bn2", "conv2", 16)):  # conv2 had no bias of its own
        assert (rows[folded]["kind"], rows[folded]["macs"]) == ("conv", want[conv]["macs"])
        assert rows[folded]["params"] == want[conv]["params"] + bias
        assert {k: rows[folded][k] for k in ("output_shape", "stride", "receptive_field", "offset")} == \
            {k: want[folded][k] for k in ("output_shape", "stride", "receptive_field", "offset")}
    assert sum(r["macs"] for r in rows.values()) == sum(r["macs"] for r in want.values())
    assert {"gap", "view"} <= rows.keys() and "drop" not in rows
    stem, bn = _geometry().stem[0], _geometry().stem[1]
    scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach()
    assert onnx_model.first_conv == "stem.1"
    torch.testing.assert_close(first_layer_weights(onnx_model), stem.weight.detach() * scale[:, None, None, None],
                               atol=1e-6, rtol=1e-5)


def test_pt2_layers_hold_the_very_tensors_unflatten_made():
    from torch.export.unflatten import InterpreterModule

    from vislib.models.exported.pt2_layers import restore_layers
    module = torch.export.unflatten(torch.export.export(_geometry(), (example(),), dynamic_shapes=DYNAMIC))
    before = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    state = module.state_dict().keys()
    restore_layers(module)
    after = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    assert after.keys() == before.keys() and all(after[k] is v for k, v in before.items())
    assert module.state_dict().keys() == state
    assert not [n for n, m in module.named_modules() if isinstance(m, InterpreterModule)]
    torch.testing.assert_close(module.eval()(example(3)), _geometry()(example(3)), atol=0, rtol=0)


class OwnConv(nn.Conv2d):
    """A subclass: its forward may do anything, so it is no Conv2d to the loader."""


class Unusual(nn.Module):
    def __init__(self):
        super().__init__()
        self.reflect = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")  # two operations: pad, conv
        self.own, self.relu, self.fc = OwnConv(4, 4, 3, padding=1), nn.ReLU(), nn.Linear(4, CLASSES)

    def forward(self, x):
        return self.fc(self.relu(self.own(self.reflect(x))).mean((2, 3)))


def test_pt2_modules_that_are_not_one_known_operation_stay_as_they_were(tmp_path):
    from torch.export.unflatten import InterpreterModule
    torch.manual_seed(0)
    net = Unusual().eval()
    network = read_network(export(net, tmp_path / "unusual.pt2"))
    modules = dict(network.module.named_modules())
    assert isinstance(modules["reflect"], InterpreterModule) and modules["reflect"]._vislib_kind == "conv"
    assert isinstance(modules["own"], InterpreterModule) and not hasattr(modules["own"], "_vislib_kind")
    assert type(modules["relu"]) is nn.ReLU and type(modules["fc"]) is nn.Linear
    with torch.no_grad():
        torch.testing.assert_close(network.module(example(3)), net(example(3)), atol=1e-5, rtol=0)


class Assorted(nn.Module):
    """The operators the added ONNX converters cover, in one small network."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.fc = nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.Linear(8, CLASSES)

    def forward(self, x):
        x = F.mish(self.norm(self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))))  # Pad, GroupNormalization, Mish
        x = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")   # AveragePool, Resize
        a, b = torch.split(x, 4, 1)                                                 # Split
        y = torch.cat([a.amax((2, 3)), b.std((2, 3))], 1)                           # ReduceMax, ReduceMean
        return self.fc(F.gelu(y, approximate="tanh").reshape(-1, 8))                # Gelu, Reshape


@pytest.mark.parametrize("opset", [18, 20, 22])
def test_the_added_onnx_converters_at_each_opset(opset, tmp_path):
    """18: torch's default before 2.9 (Reshape's allowzero); 20: today's; 22: bfloat16 everywhere."""
    torch.manual_seed(0)
    net = Assorted().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.onnx.export(net, (example(),), dynamic_shapes=DYNAMIC, opset_version=opset).model_proto
    network = read_network(model.SerializeToString())
    with torch.no_grad():
        for n in (1, 3):
            torch.testing.assert_close(network.module(example(n)), net(example(n)), atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- a fixed batch, a wrong output

def test_a_fixed_batch_is_refused_with_the_export_call_that_works(tmp_path, monkeypatch):
    """The sentence's own recipe, run as written, gives a file that loads."""
    net = build("plain")
    monkeypatch.chdir(tmp_path)
    for kind in ("pt2", "onnx"):
        with pytest.raises(ModelError) as err:
            read_network(export(net, tmp_path / f"fixed.{kind}", dynamic=False))
        sentence = str(err.value)
        assert one_sentence(sentence) and "fixed batch of 2 pictures" in sentence, sentence
        recipe = re.search(r"dynamic batch: (torch\..*?\)\)?)(?: with an example| or, with)", sentence).group(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eval(recipe, {"torch": torch, "net": net})  # noqa: S307 - our own sentence, written by this test's run
        assert read_network(tmp_path / f"net.{kind}").size == (SIZE, SIZE)
    # the sentence's alternative for the TorchScript exporter
    assert 'dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}}' in sentence
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example(1),), "legacy.onnx", dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    network = read_network("legacy.onnx")
    with torch.no_grad():
        torch.testing.assert_close(network.module(example(3)), net(example(3)), atol=1e-4, rtol=0)


def test_a_network_exported_in_training_mode_is_refused(tmp_path):
    with pytest.raises(ModelError, match="training mode; call net.eval"):
        read_network(export(build("plain").train(), tmp_path / "train.pt2"))


def test_a_network_that_gives_no_class_scores_is_refused(tmp_path):
    """Found by running it (ONNX says so in its declared output: the hand-made 'maps instead of scores' below)."""
    maps = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    with pytest.raises(ModelError) as err:
        read_network(export(maps, tmp_path / "maps.pt2"))
    assert one_sentence(str(err.value)) and "class scores [N, classes]" in str(err.value)
    assert "a tensor of shape [1, 4, 32, 32]" in str(err.value)


# ---------------------------------------------------------------- builders of hostile files

class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, CLASSES)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).mean((2, 3)))


@functools.cache  # bytes: each caller edits its own copy
def small_pt2() -> bytes:
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(TinyNet().eval(), (torch.randn(2, 3, 8, 8),), dynamic_shapes=DYNAMIC),
                      buffer)
    return buffer.getvalue()


def edit_pt2(data: bytes, edit) -> bytes:
    """The archive with `edit(entries)` applied to its entries (names without the archive's root folder)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    [root] = [n[:-len("archive_format")] for n in source.namelist() if n.endswith("archive_format")]
    entries = {n[len(root):]: source.read(n) for n in source.namelist()}
    edit(entries)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, value in entries.items():
            z.writestr(root + name, value)
    return out.getvalue()


def edit_program(data: bytes, edit) -> bytes:
    """The archive with `edit(program)` applied to its exported program's JSON."""
    def change(entries):
        program = json.loads(entries["models/model.json"])
        edit(program)
        entries["models/model.json"] = json.dumps(program).encode()
    return edit_pt2(data, change)


def edit_weights(data: bytes, edit) -> bytes:
    def change(entries):
        config = json.loads(entries["data/weights/model_weights_config.json"])
        edit(config["config"], entries)
        entries["data/weights/model_weights_config.json"] = json.dumps(config).encode()
    return edit_pt2(data, change)


def pt2_with_pickle(marker: Path) -> bytes:
    """A .pt2 whose fc.bias is a pickle (use_pickle) that creates `marker` when unpickled."""
    def change(config, entries):
        config["fc.bias"]["use_pickle"] = True
        entries["data/weights/" + config["fc.bias"]["path_name"]] = _evil_files(marker)["torch.save"]
    return edit_weights(small_pt2(), change)


def pt2_declaring(sizes: list[int]) -> bytes:
    """A .pt2 whose fc.weight declares `sizes` (its stored numbers stay a few)."""
    def change(config, entries):
        config["fc.weight"]["tensor_meta"]["sizes"] = [{"as_int": s} for s in sizes]
    return edit_weights(small_pt2(), change)


def tiny_onnx(batch="N", name: str = "fc", domain: str = "", output_4d=False, initializers=(), external=None,
              op: str = "Relu") -> bytes:
    """A hand-made ONNX classifier x[batch,3,8,8] -> Conv -> `op` -> pool -> Gemm -> [batch,5]. `external`:
    the Gemm's weights kept in that file instead (location as written); `initializers`: extra tensors."""
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array(v, k) for k, v in _tiny_weights().items()] + list(initializers)
    if external is not None:
        fw = inits[2]
        fw.ClearField("raw_data")
        fw.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external), ("offset", "0"), ("length", str(CLASSES * 4 * 4))):
            fw.external_data.add(key=key, value=value)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node(op, ["c"], ["r"], name="act", domain=domain)]
    if not output_4d:
        nodes += [helper.make_node("GlobalAveragePool", ["r"], ["g"], name="pool"),
                  helper.make_node("Flatten", ["g"], ["f"], name="flat"),
                  helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name=name)]
    out = ("r", [batch, 4, 8, 8]) if output_4d else ("y", [batch, CLASSES])
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info(out[0], TensorProto.FLOAT, out[1])], inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _tiny_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = {"w": (4, 3, 3, 3), "b": (4,), "fw": (CLASSES, 4), "fb": (CLASSES,)}
    return {k: rng.standard_normal(shape).astype(np.float32) for k, shape in shapes.items()}


def tiny_onnx_weights() -> bytes:
    """The bytes `tiny_onnx(external=...)` expects in its external file."""
    return _tiny_weights()["fw"].tobytes()


def declared_tensor(name: str, dims: list[int]):
    """An initializer that declares `dims` and holds no numbers."""
    from onnx import TensorProto
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT)
    tensor.dims.extend(dims)
    return tensor


def external_escape(folder: Path, how: str) -> bytes:
    """An ONNX model whose weights file leaves `folder`: through "..", an absolute path or a symlink."""
    outside = folder.parent / f"outside-{folder.name}"
    outside.mkdir(exist_ok=True)
    (outside / "secret.bin").write_bytes(tiny_onnx_weights())
    if how == "symlink":
        link = folder / "weights.bin"
        if not link.is_symlink():
            link.symlink_to(outside / "secret.bin")
        return tiny_onnx(external="weights.bin")
    return tiny_onnx(external=f"../{outside.name}/secret.bin" if how == ".." else str(outside / "secret.bin"))


# ---------------------------------------------------------------- hostile files: the .pt2

def refused(source, *words: str) -> str:
    with pytest.raises(ModelError) as err:
        read_network(source)
    sentence = str(err.value)
    assert one_sentence(sentence) and all(w in sentence for w in words), sentence
    return sentence


def _placeholder_named(code: str):
    """Renames the network's input to `code`: torch.fx pastes it into `def forward(self, ...)`."""
    def edit(program):
        module = program["graph_module"]
        text = json.dumps(module).replace('{"name": "x"}', json.dumps({"name": code}))
        program["graph_module"] = json.loads(text)
        values = program["graph_module"]["graph"]["tensor_values"]
        values[code] = values.pop("x")
    return edit


def _size_expression(code: str):
    """Writes `code` as every symbolic size: torch hands those to sympy.sympify, which evals them."""
    def edit(value):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if key == "expr_str":
                value[key] = code
            elif isinstance(item, (dict, list)):
                edit(item)
    return edit


ATTACKS = {  # each makes torch.export.load run code (the marker appears); read_network refuses or ignores it
    "pickled weight": lambda m: pt2_with_pickle(m),
    "pickled sample inputs": lambda m: edit_pt2(small_pt2(), lambda e: e.update(
        {"data/sample_inputs/model.pt": _evil_files(m)["exec"]})),
    "code as the input's name": lambda m: edit_program(small_pt2(), _placeholder_named(
        f'x=__import__("os").mkdir("{m}")')),
    "code as a size": lambda m: edit_program(small_pt2(), _size_expression(f"__import__('os').mkdir('{m}')")),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_torch_export_load_runs_the_attack_and_read_network_does_not(attack, tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt2"
    path.write_bytes(ATTACKS[attack](marker))
    try:
        torch.export.load(path)
    except Exception:  # most attacks break the program after they ran
        pass
    assert marker.exists(), "the attack is real: torch's own loader ran it"
    os.rmdir(marker) if marker.is_dir() else marker.unlink()
    if attack == "pickled sample inputs":  # never read: the network loads, the pickle stays shut
        assert read_network(path).channels == 3
    else:
        refused(path, "could run code")
    assert not marker.exists()


@pytest.mark.parametrize("change,words", [
    (lambda p: p.update(guards_code=["__import__('os').system('true')"]), ["guard code"]),
    (lambda p: [n.update(target="torch.ops.aten.from_file.default") for n in p["graph_module"]["graph"]["nodes"]
                if n["target"] == "torch.ops.aten.relu.default"], ["from_file", "not a network operation"]),
    (lambda p: [n.update(target="torch.os.system") for n in p["graph_module"]["graph"]["nodes"]
                if n["target"] == "torch.ops.aten.relu.default"], ["torch.os.system"]),
    (lambda p: [n.update(target="torch.ops.higher_order.cond") for n in p["graph_module"]["graph"]["nodes"]
                if n["target"] == "torch.ops.aten.relu.default"], ["higher_order"]),
    (lambda p: [n["metadata"].update(nn_module_stack='L__self__,"),exec("1"),x,t') for n in
                p["graph_module"]["graph"]["nodes"]], ["named"]),
    (lambda p: p["graph_module"]["module_call_graph"].append({"fqn": 'conv")\nimport os', "signature": None}),
     ["name"]),
    (lambda p: p["graph_module"]["graph"]["custom_obj_values"].update(evil={"name": "evil", "class_fqn": "x"}),
     ["custom objects"]),
    (lambda p: [n.update(target="torch.ops.aten.__class__.__init__") for n in p["graph_module"]["graph"]["nodes"]
                if n["target"] == "torch.ops.aten.relu.default"], ["not a network operation"]),
], ids=["guard code", "a file-reading operator", "a call outside torch.ops", "a higher-order operator",
        "code in a module path", "code in a call-graph name", "a custom object", "an attribute of torch.ops.aten"])
def test_programs_that_could_run_code_are_refused(change, words):
    refused(edit_program(small_pt2(), change), "could run code", *words)


def _relu_to(target: str, inputs: list):
    def edit(program):
        for node in program["graph_module"]["graph"]["nodes"]:
            if node["target"] == "torch.ops.aten.relu.default":
                node.update(target=target, inputs=inputs)
    return edit


def test_a_step_that_makes_a_huge_tensor_is_refused_by_its_arguments():
    size = [{"name": "size", "arg": {"as_ints": [100_000, 100_000]}, "kind": 1}]
    refused(edit_program(small_pt2(), _relu_to("torch.ops.aten.zeros.default", size)), "zeros",
            "numbers one tensor may have")


def test_a_call_that_is_not_one_tensor_in_and_out_is_refused():
    def edit(program):
        [root] = [c for c in program["graph_module"]["module_call_graph"] if c["fqn"] == ""]
        root["signature"]["out_spec"] = root["signature"]["out_spec"].replace("null", '"builtins.list"', 1)
    refused(edit_program(small_pt2(), edit), "one tensor of class scores")


def test_pickled_constants_are_refused(tmp_path):
    def change(entries):
        entries["data/constants/model_constants_config.json"] = json.dumps({"config": {"evil": {
            "path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}}}).encode()
        entries["data/constants/opaque_obj_0"] = _evil_files(tmp_path / "ran")["pickle"]
    refused(edit_pt2(small_pt2(), change), "could run code", "opaque_obj_0")
    assert not (tmp_path / "ran").exists()


def test_a_pickled_tensor_is_read_with_the_restricted_unpickler():
    """torch.export.save pickles unusual tensors: those still load, through weights_only=True."""
    def change(config, entries):
        config["fc.bias"]["use_pickle"] = True
        buffer = io.BytesIO()
        torch.save(torch.arange(CLASSES, dtype=torch.float32), buffer)
        entries["data/weights/" + config["fc.bias"]["path_name"]] = buffer.getvalue()
    network = read_network(edit_weights(small_pt2(), change))
    assert torch.equal(network.module.fc.bias.detach(), torch.arange(CLASSES, dtype=torch.float32))


def legacy_pt2(weights: bytes) -> bytes:
    """small_pt2 as torch.export.save wrote it before torch 2.8: its weights one torch.save'd file."""
    def change(entries):
        for name in [n for n in entries if n.startswith("data/weights/")]:
            del entries[name]
        entries["data/weights/model.pt"] = weights
    return edit_pt2(small_pt2(), change)


def test_the_weights_file_of_older_archives_is_read_with_the_restricted_unpickler(tmp_path):
    torch.manual_seed(0)
    net, buffer = TinyNet().eval(), io.BytesIO()
    torch.save(dict(net.named_parameters()), buffer)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(read_network(legacy_pt2(buffer.getvalue())).module(x), net(x))
    refused(legacy_pt2(_evil_files(tmp_path / "ran")["torch.save"]), "could run code")
    assert not (tmp_path / "ran").exists()


def test_a_declared_ten_billion_numbers_are_refused_before_any_allocation():
    refused(pt2_declaring([100_000, 100_000]), "[100000, 100000]", "numbers one tensor may have")
    refused(pt2_declaring([CLASSES, 40]), "fewer numbers than its tensor fc.weight declares")  # 20 stored, 200 said


@pytest.mark.parametrize("data,words", [
    (lambda: small_pt2()[:3000], ["not a readable .pt2 archive"]),
    (lambda: small_pt2()[:-3000], ["not a readable .pt2 archive"]),
    (lambda: os.urandom(5000), ["not a readable .pt2 archive"]),
    (lambda: b"PK\x03\x04" + os.urandom(100), ["not a readable .pt2 archive"]),
    (lambda: _zip({"notes/readme.txt": b"hello"}), ["not a .pt2 archive of torch.export"]),
    (lambda: _zip({"net/archive_format": b"pt2", "net/data/aotinductor/model/model.so": b"\x7fELF"}),
     ["AOTInductor", "machine code"]),
    (lambda: edit_pt2(small_pt2(), lambda e: e.update({"models/model.json": b"{not json"})),
     ["could not be read as an exported network"]),
    (lambda: edit_pt2(small_pt2(), lambda e: e.update({"models/model.json": b"[" * 100_000})),
     ["could not be read as an exported network"]),
], ids=["truncated (head)", "truncated (tail)", "random bytes", "a broken zip", "a zip of something else",
        "an AOTInductor package", "a program that is not JSON", "JSON nested 100,000 deep"])
def test_broken_pt2_files_are_one_sentence(data, words, tmp_path):
    content = data()
    upload = io.BytesIO(content)
    upload.name = "net.pt2"
    (tmp_path / "net.pt2").write_bytes(content)
    for source in (tmp_path / "net.pt2", upload) + ((content,) if content[:4] == b"PK\x03\x04" else ()):
        refused(source, *words)  # bytes are a .pt2 when they are a zip


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, value in entries.items():
            z.writestr(name, value)
    return out.getvalue()


# ---------------------------------------------------------------- hostile files: ONNX

def test_the_hand_made_onnx_model_loads(tmp_path):
    network = read_network(tiny_onnx())
    assert (network.kind, network.channels, network.size) == ("onnx", 3, (8, 8))
    path = tmp_path / "net.onnx"  # its weights beside it, as onnx.save(..., save_as_external_data=True) does
    path.write_bytes(tiny_onnx(external="weights.bin"))
    (tmp_path / "weights.bin").write_bytes(tiny_onnx_weights())
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(read_network(path).module(x), network.module(x))


def test_onnx2torch_runs_code_from_a_node_name_and_read_network_does_not(tmp_path):
    """onnx2torch names its modules after the nodes and torch.fx pastes those names into source."""
    import onnx
    import onnx2torch
    marker = tmp_path / "ran"
    hexed = str(marker).encode().hex()
    code = (f'training")\ngetattr(__import__("os"), "mkdir")(getattr(bytes, "fromhex")("{hexed}"))\n'
            f'_ = getattr(self, "training')
    data = tiny_onnx(name=code)
    try:
        onnx2torch.convert(onnx.load_model_from_string(data))(torch.zeros(1, 3, 8, 8))
    except Exception:
        pass
    assert marker.exists(), "the attack is real: onnx2torch's module ran it"
    marker.rmdir()
    network = read_network(data)  # the node is renamed before onnx2torch sees it
    assert network.module(torch.zeros(2, 3, 8, 8)).shape == (2, CLASSES) and not marker.exists()
    assert all(re.fullmatch(r"[\w.]*", name) for name, _ in network.module.named_modules())


@pytest.mark.parametrize("how", ["..", "absolute", "symlink"])
def test_external_data_outside_the_models_folder_is_refused(how, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "net.onnx"
    path.write_bytes(external_escape(folder, how))
    refused(path, "outside the model's folder")


@pytest.mark.parametrize("location,words", [
    ("weights\0.bin", ["outside the model's folder"]),
    ("pipe", ["not a file"]),
    ("sub", ["not a file"]),
    ("weights.bin", ["does not match the size"]),
])
def test_external_data_that_is_not_a_file_of_the_right_size_is_one_sentence(location, words, tmp_path):
    import onnx
    os.mkfifo(tmp_path / "pipe")  # reading it would never end
    (tmp_path / "sub").mkdir()
    (tmp_path / "weights.bin").write_bytes(tiny_onnx_weights())
    model = onnx.load_model_from_string(tiny_onnx(external=location))
    if location == "weights.bin":
        model.graph.initializer[2].external_data[1].value = "zero"  # the offset, not a number
    (tmp_path / "net.onnx").write_bytes(model.SerializeToString())
    refused(tmp_path / "net.onnx", *words)


def test_external_data_is_refused_for_bytes_and_uploads(tmp_path):
    data = tiny_onnx(external="weights.bin")
    (tmp_path / "weights.bin").write_bytes(tiny_onnx_weights())
    upload = io.BytesIO(data)
    upload.name = "net.onnx"
    for source in (data, upload):
        refused(source, "must hold its weights itself", "external_data=False", "save_as_external_data=False")


def test_files_over_the_size_cap_are_refused_before_they_are_read(monkeypatch, tmp_path):
    monkeypatch.setattr(exported, "MAX_CHECKPOINT_BYTES", 100)
    path = tmp_path / "big.onnx"
    path.write_bytes(tiny_onnx())
    upload = io.BytesIO(path.read_bytes())
    upload.name = "big.pt2"
    for source in (path, path.read_bytes(), upload):
        refused(source, "larger than")


def test_declared_sizes_are_refused_before_any_allocation():
    refused(tiny_onnx(initializers=[declared_tensor("huge", [100_000, 100_000])]), "huge",
            "[100000, 100000]", "numbers one tensor may have")
    many = [declared_tensor(f"t{i}", [2**27]) for i in range(3)]  # each allowed, together not
    refused(tiny_onnx(initializers=many), "numbers in all")
    import onnx
    from onnx import helper, numpy_helper
    model = onnx.load_model_from_string(tiny_onnx())  # a tensor the graph makes from a size it holds
    model.graph.initializer.append(numpy_helper.from_array(np.array([100_000, 100_000], np.int64), "shape"))
    model.graph.node.append(helper.make_node("ConstantOfShape", ["shape"], ["made"]))
    refused(model.SerializeToString(), "the tensor made", "numbers one tensor may have")


@pytest.mark.parametrize("data,words", [
    (lambda: tiny_onnx(domain="com.evil", op="Backdoor"), ["com.evil::Backdoor", "not a standard ONNX operator"]),
    (lambda: tiny_onnx(domain="com.evil", op="Back\ndoor. It"), ["'com.evil::Back\\ndoor.\\x20It'"]),
    (lambda: tiny_onnx(op="Shrink"), ["the operator Shrink (opset 9)", "cannot turn into PyTorch"]),
    (lambda: tiny_onnx(output_4d=True), ["class scores [N, classes]", "[N, 4, 8, 8]"]),
    (lambda: tiny_onnx(batch=1), ["fixed batch of 1 picture,", "dynamic_axes"]),
    (lambda: tiny_onnx()[:200], []),
    (lambda: os.urandom(5000), []),
    (lambda: b"\x08\x07", ["not a readable ONNX model"]),
    (lambda: b"", ["empty"]),
], ids=["a custom-domain operator", "an operator with a line break in its name", "an operator without a converter",
        "maps instead of scores", "a fixed batch", "truncated", "random bytes", "a model without a graph",
        "an empty file"])
def test_broken_onnx_files_are_one_sentence(data, words, tmp_path):
    content = data()
    path = tmp_path / "net.onnx"
    path.write_bytes(content)
    for source in (path, content):
        refused(source, *words)
