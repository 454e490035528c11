"""Your own network (issue 24), a sample of `bench/zoo_sweep.py`: a person's checkpoint of a
torchvision or timm architecture gives the module's own probabilities, a layer catalogue in forward
order and pytorch-grad-cam's Grad-CAM; the found layers' receptive fields are the pixels that
really move a cell; the found catalogues, first convolutions and classifiers are the ones a person
would pick; preprocessing comes from the libraries; weights placed by hand in $TORCH_HOME load.
Random weights only: nothing is ever downloaded (the network is switched off for the whole module).
"""
from __future__ import annotations

import math
import re
import socket

import cv2
import numpy as np
import pytest
import timm
import torch
import torchvision
from PIL import Image
from pytorch_grad_cam import GradCAM
from receptive import brute_force_boxes, wiring
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from safetensors.torch import save_file
from torch import nn

import vislib
from vislib import attribution
from vislib.models import ModelError, family, generated, torchvision_zoo
from vislib.models.layers import measure


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection a test tries is refused: weights come from files the test put there."""
    def refuse(*args, **kwargs):
        raise OSError("no network in tests")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for module in (torchvision_zoo, generated):
        monkeypatch.setattr(module, "can_reach", lambda host: False)


def one_sentence(message: str) -> bool:
    return message.endswith(".") and "\n" not in message and not re.search(r"[.!?]\s+[A-Z]", message)


# ---------------------------------------------------------------- a person's checkpoint, checked against the libraries

SAMPLE = {  # architecture -> input size: each structure once, small enough to be quick
    "mobilenet_v3_small": 64,   # squeeze-and-excitation, hard-swish
    "shufflenet_v2_x0_5": 64,   # channel split and shuffle
    "regnet_x_400mf": 64,       # a builder that computes its widths with tensors (not on the meta device)
    "squeezenet1_1": 64,        # fire modules, a convolution as classifier
    "densenet121": 64,          # concatenations; F.relu(inplace=True) after the last norm
    "googlenet": 64,            # Inception branches, the zoo's own family
    "timm:resnet26d": 64,       # deep stem, average-pool shortcut
    "timm:convnext_atto": 64,   # channels-last MLP inside each block, layer scale
    "timm:dla34": 64,           # tree aggregation
    "timm:mobilenetv4_conv_small": 64,  # universal inverted bottlenecks
}


def _resize_only(cam, target_size=None):
    """pytorch-grad-cam's scale_cam_image without its 0..1 stretch: cv2's resize only."""
    return np.float32([cv2.resize(np.float32(img), target_size) if target_size is not None else img for img in cam])


def library_gradcam(net: nn.Module, layer: str, x: torch.Tensor, target: int, monkeypatch) -> torch.Tensor:
    """pytorch-grad-cam's GradCAM of the person's own module at `layer`. The library stretches its map
    to 0..1; vislib keeps Grad-CAM's values (both resize bilinearly), so the stretch is left out."""
    import pytorch_grad_cam.base_cam as base_cam
    monkeypatch.setattr(base_cam, "scale_cam_image", _resize_only)
    for m in net.modules():  # the library's gradient hooks break on in-place modules after the layer
        if getattr(m, "inplace", None) is True:
            m.inplace = False
    cam = GradCAM(net, [dict(net.named_modules())[layer]])
    try:
        return torch.from_numpy(cam(input_tensor=x.clone().requires_grad_(), targets=[ClassifierOutputTarget(target)])[0])
    finally:
        cam.activations_and_grads.release()


def call_order(model: vislib.Model, x: torch.Tensor) -> tuple[dict, dict]:
    """When each catalogue module started and ended in one pass (forward hooks, one clock)."""
    clock, started, ended = iter(range(10**6)), {}, {}

    def stamp(seen: dict, name: str):
        def hook(*_) -> None:
            seen.setdefault(name, next(clock))
        return hook

    with model.running() as net, torch.no_grad():
        modules = dict(net.named_modules())
        hooks = [h for info in model.layers() for h in (
            modules[info.name].register_forward_pre_hook(stamp(started, info.name)),
            modules[info.name].register_forward_hook(stamp(ended, info.name)))]
        try:
            net(x)
        finally:
            for h in hooks:
                h.remove()
    return started, ended


@pytest.mark.parametrize("arch", list(SAMPLE))
def test_a_checkpoint_gives_the_modules_probabilities_ordered_layers_and_the_librarys_gradcam(
        arch, tmp_path, monkeypatch, flush_denormals):
    size = SAMPLE[arch]
    torch.manual_seed(0)
    net = family(arch).build(4).eval()
    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    model = vislib.load_model(str(path), arch=arch, labels=["a", "b", "c", "d"], device="cpu")
    assert (model.arch, model.labels) == (arch, ["a", "b", "c", "d"])
    torch.manual_seed(1)
    x = torch.randn(2, 3, size, size)
    # (a) the module's own softmax
    with torch.no_grad():
        expected = net(x).softmax(1)
    assert float((model.probabilities(x) - expected).abs().max()) <= 1e-4
    # (b) the catalogue in forward order: each entry starts after the one before it has ended
    names = [info.name for info in model.layers()]
    started, ended = call_order(model, x[:1])
    assert len(names) >= 5 and set(started) == set(names)
    assert all(ended[a] < started[b] for a, b in zip(names, names[1:]))
    # (c) Grad-CAM at its default layer equals the library's at the same module, for the same class
    layer = attribution.gradcam_layer(model)
    assert layer == names[-1]
    for target in expected[0].argsort(descending=True).tolist():  # the top class whose map is not all zero
        reference = library_gradcam(net, layer, x[:1], target, monkeypatch)
        if float(reference.max()) > 0:
            break
    assert float(reference.max()) > 0 and reference.shape == (size, size)
    ours = attribution.gradcam(model, x[:1], target)
    assert float((ours - reference).abs().max()) <= 1e-4 * float(reference.max())


# ---------------------------------------------------------------- receptive fields against brute force

def _wiring(arch: str) -> nn.Module:
    """The architecture as `receptive.wiring` makes it, built without paying for a random init."""
    with torch.device("meta"):
        net = family(arch).build(4)
    return wiring(net.to_empty(device="cpu"))


FIELDS = {  # architecture -> (input size, catalogue layers probed, how many must be inside the picture)
    "resnet18": (112, ["relu", "maxpool", "layer1.1", "layer2.0", "layer2.1", "layer3.1", "layer4.1"], 5),
    "vgg11": (96, ["features.1", "features.2", "features.7", "features.10", "features.15", "features.20"], 5),
    "densenet121": (96, ["features.relu0", "features.pool0", "features.denseblock1", "features.transition1.pool",
                         "features.denseblock2", "features.denseblock4"], 4),
    "timm:convnext_atto": (96, ["stem.1", "stages.0.blocks.1", "stages.1.downsample.1", "stages.1.blocks.1",
                                "stages.3.blocks.1"], 3),
    "timm:resnet26d": (96, ["conv1.2", "act1", "maxpool", "layer1.0", "layer2.1", "layer3.1", "layer4.1"], 5),
    # 5 x 5 depthwise convolutions, squeeze-and-excitation (removed: see wiring)
    "efficientnet_b0": (96, ["features.0.2", "features.1", "features.2.1", "features.3.1", "features.4.0",
                             "features.5.0"], 5),
    # 1 x 7 and 7 x 1 kernels, unpadded stride-2 windows that leave the last pixels unread
    "inception_v3": (160, ["Conv2d_2b_3x3", "maxpool1", "Conv2d_4a_3x3", "Mixed_5b", "Mixed_5d", "Mixed_6a",
                           "Mixed_6b"], 5),
}


def geometry_model(arch: str) -> vislib.Model:
    """The architecture as a Model with zero weights: the layers' geometry without paying for a random
    initialisation (VGG's classifier alone takes seconds)."""
    with torch.device("meta"):
        net = family(arch).build(4)
    net = net.to_empty(device="cpu")
    with torch.no_grad():
        for t in (*net.parameters(), *net.buffers()):
            t.zero_()
    return family(arch).assemble(net, ["a", "b", "c", "d"], "cpu")


@pytest.mark.parametrize("arch", list(FIELDS))
def test_receptive_fields_are_the_pixels_that_move_a_cell(arch):
    size, names, inside = FIELDS[arch]
    model = geometry_model(arch)
    catalogue = [(info.name, info.kind) for info in model.layers()]
    assert set(names) <= {name for name, _ in catalogue}
    with model.running() as net:  # the geometry at the probe's size, for the boxes clipped at the border
        infos = {i.name: i for i in measure(net, size, [c for c in catalogue if c[0] in names])}
    # the centre cell of each layer; the last cell of the deepest, whose field the border clips
    probes = [(n, infos[n].size[0] // 2, infos[n].size[1] // 2) for n in names]
    probes.append((names[-1], infos[names[-1]].size[0] - 1, infos[names[-1]].size[1] - 1))
    whole = 0
    for (name, row, col), box in zip(probes, brute_force_boxes(_wiring(arch), size, probes)):
        assert infos[name].box(row, col, size) == box, (name, row, col)
        x0, y0, x1, y1 = box
        lo, hi = infos[name].reach  # the pixels some cell reads: an unpadded stride may leave the last unread
        if lo < x0 and lo < y0 and x1 < hi and y1 < hi:  # the whole field inside what the layer reads
            whole += 1
            assert x1 - x0 == y1 - y0 == model.layer(name).receptive_field, name
    assert whole >= inside


# ---------------------------------------------------------------- what a person would pick

def test_resnet18s_catalogue_is_its_stages_blocks_generated_or_written():
    blocks = [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    assert [name for name, _ in generated.family("resnet18").catalogue(None)] == ["relu", "maxpool", *blocks]
    assert [name for name, _ in family("resnet18").catalogue(family("resnet18").build(4))] == ["relu", "maxpool", *blocks]


@pytest.mark.parametrize("arch, first, last", [
    ("vgg16", ["features.1", "features.3", "features.4"], "features.30"),  # no head's adaptive pool
    ("alexnet", ["features.1", "features.2"], "features.12"),
    ("densenet121", ["features.relu0", "features.pool0", "features.denseblock1"], "features.denseblock4"),
    ("timm:densenet121", ["features.norm0", "features.pool0", "features.denseblock1"], "features.norm5"),
    ("efficientnet_b0", ["features.0.2", "features.1", "features.2.0"], "features.8.2"),
    ("mnasnet0_5", ["layers.2", "layers.5", "layers.7"], "layers.16"),
    ("convnext_tiny", ["features.0.1", "features.1.0", "features.1.1"], "features.7.2"),
    ("inception_v3", ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1"], "Mixed_7c"),
    ("timm:resnet26d", ["conv1.2", "conv1.5", "act1", "maxpool", "layer1.0"], "layer4.1"),
    ("timm:dpn68", ["features.conv1_1", "features.conv1_pool"], "features.conv5_bn_ac"),
])
def test_the_found_catalogue_starts_and_ends_where_a_person_would(arch, first, last):
    names = [name for name, _ in generated.family(arch).catalogue(None)]
    assert names[:len(first)] == first and names[-1] == last


@pytest.mark.parametrize("arch, first_conv, classifier", [
    ("resnet50", "conv1", "fc.weight"),
    ("convnext_tiny", "features.0.0", "classifier.2.weight"),
    ("densenet121", "features.conv0", "classifier.weight"),
    ("efficientnet_b0", "features.0.0", "classifier.1.weight"),
    ("squeezenet1_0", "features.0", "classifier.1.weight"),  # a 1 x 1 convolution makes the logits
    ("inception_v3", "Conv2d_1a_3x3.conv", "fc.weight"),
    ("regnet_y_400mf", "stem.0", "fc.weight"),
    ("vit_b_16", "conv_proj", "heads.head.weight"),
    ("timm:resnet26d", "conv1.0", "fc.weight"),
    ("timm:efficientnet_b0", "conv_stem", "classifier.weight"),
    ("timm:convnext_atto", "stem.0", "head.fc.weight"),
    ("timm:inception_v4", "features.0.conv", "last_linear.weight"),
])
def test_found_first_convolution_and_classifier(arch, first_conv, classifier):
    fam = generated.family(arch)
    assert (fam.first_conv, fam.classifier) == (first_conv, classifier)


def test_transformers_have_no_layer_with_a_map_but_their_patch_convolution():
    assert generated.family("swin_t").catalogue(None) == []  # channels-last stages
    assert generated.family("vit_b_16").catalogue(None) == [("conv_proj", "conv")]


def test_a_regnet_is_surveyed_without_its_weights(monkeypatch):
    """torchvision's RegNet builders compute with tensors on the way (the meta device refuses them):
    the family is still surveyed from a network whose weights are on the meta device, not real ones."""
    devices, survey = [], generated.survey
    monkeypatch.setattr(generated, "survey", lambda net, size: devices.append(
        {p.device.type for p in net.parameters()}) or survey(net, size))
    generated.family.cache_clear()
    try:
        fam = generated.family("regnet_x_400mf")
    finally:
        generated.family.cache_clear()
    assert devices == [{"meta"}]
    assert fam.catalogue(None)[-1] == ("trunk_output.block4.block4-11", "block") and fam.classifier == "fc.weight"


# ---------------------------------------------------------------- names, preprocessing

def test_every_torchvision_and_timm_name_is_an_architecture():
    names = generated.names()
    assert set(torchvision.models.list_models(module=torchvision.models)) <= set(names)
    assert {f"timm:{n}" for n in timm.list_models()} <= set(names)
    found = vislib.architectures("convnext")
    assert {"convnext_tiny", "convnext_large", "timm:convnext_atto", "timm:convnextv2_atto"} <= set(found)
    assert all("convnext" in n.lower() for n in found)
    assert vislib.architectures("ConvNeXt_T") == vislib.architectures("convnext_t")


@pytest.mark.parametrize("arch", ["timm:resnext26ts", "timm:inception_v3"])
def test_a_timm_familys_preprocessing_is_timms_pretrained_config(arch, cat):
    cfg = timm.models.get_pretrained_cfg(arch[5:])
    ours = family(arch).preprocessing()
    assert (ours.input_size, ours.resize_size) == (cfg.input_size[-1], math.floor(cfg.input_size[-1] / cfg.crop_pct))
    assert (ours.interpolation, ours.mean, ours.std) == (cfg.interpolation, tuple(cfg.mean), tuple(cfg.std))
    theirs = timm.data.create_transform(**timm.data.resolve_data_config({}, pretrained_cfg=cfg.to_dict()))
    picture = cat.crop((0, 0, 400, 300))
    assert torch.allclose(ours(picture), theirs(picture), atol=1e-5)


@pytest.mark.parametrize("arch", ["efficientnet_b3", "inception_v3"])
def test_a_torchvision_familys_preprocessing_is_its_weights_transforms(arch, cat):
    transforms = torchvision.models.get_model_weights(arch).DEFAULT.transforms()
    ours = family(arch).preprocessing()
    assert (ours.input_size, ours.resize_size, ours.interpolation) == \
        (transforms.crop_size[0], transforms.resize_size[0], transforms.interpolation.value)
    picture = cat.crop((0, 0, 400, 300))
    assert torch.allclose(ours(picture), transforms(picture), atol=1e-5)


# ---------------------------------------------------------------- weights put into $TORCH_HOME by hand

def test_timm_weights_placed_in_torch_home_load(torch_home, tmp_path, monkeypatch):
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty cache
    folder = tmp_path / "torch" / "hub" / "timm"
    message = vislib.models.availability("timm:resnet18")
    assert message.state == "unavailable" and one_sentence(message.detail)
    assert f"as resnet18.safetensors into {folder}" in message.detail
    with pytest.raises(ModelError) as err:
        vislib.load_model("timm:resnet18")
    assert "could not be downloaded" in str(err.value) and one_sentence(str(err.value))
    torch.manual_seed(4)
    state = timm.create_model("resnet18").state_dict()
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "resnet18.safetensors"))
    assert vislib.models.availability("timm:resnet18").state == "ready"
    model = vislib.load_model("timm:resnet18")
    assert torch.equal(model.net.conv1.weight.cpu(), state["conv1.weight"])
    assert torch.equal(model.net.fc.bias.cpu(), state["fc.bias"])
    assert model.labels[281] == "tabby" and model.arch == "timm:resnet18"
    (folder / "resnet18.safetensors").write_bytes(b"not weights" * 20)
    with pytest.raises(ModelError) as err:
        vislib.load_model("timm:resnet18")
    assert str(err.value) == (f"The weights of timm's resnet18 do not fit it or are damaged: put a good copy as "
                              f"resnet18.safetensors into {folder}.")


def _old_densenet_keys(state: dict) -> dict:
    """DenseNet's files on torchvision's server keep an old torchvision's key names ('norm.1'), from
    before batch norms counted their batches."""
    return {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()
            if not k.endswith("num_batches_tracked")}


def test_torchvision_weights_placed_in_torch_home_load(torch_home):
    weights = torchvision.models.get_model_weights("densenet121").DEFAULT
    file = weights.url.rsplit("/", 1)[1]
    message = vislib.models.availability("densenet121")
    assert message == vislib.models.Availability("unavailable", f"Offline: put {file} into {torch_home} to use it.")
    with pytest.raises(ModelError, match=f"The weight file {file} for densenet121 is not on this machine"):
        vislib.load_model("densenet121")
    torch.manual_seed(5)
    state = torchvision.models.densenet121().state_dict()
    torch.save(_old_densenet_keys(state), torch_home / file)  # not the file's hash: torch.hub checks downloads only
    assert "features.denseblock1.denselayer1.norm.1.weight" in _old_densenet_keys(state)
    assert vislib.models.availability("densenet121").state == "ready"
    model = vislib.load_model("densenet121")
    assert torch.equal(model.net.features.denseblock1.denselayer1.norm1.weight.cpu(),
                       state["features.denseblock1.denselayer1.norm1.weight"])
    assert torch.equal(model.net.classifier.weight.cpu(), state["classifier.weight"])
    assert model.labels == list(weights.meta["categories"])
    (torch_home / file).write_bytes(b"")
    with pytest.raises(ModelError) as err:
        vislib.load_model("densenet121")
    assert str(err.value) == f"The weight file {file} for densenet121 is damaged: put a good copy of it into {torch_home}."


def test_mnasnet_loads_without_the_version_torch_save_keeps(torch_home, tmp_path):
    """torchvision's MNASNet refuses a state dict without its layout's version in `_metadata`: a
    .safetensors checkpoint never has it, and a torch.save'd weight file must keep it on its way in."""
    torch.manual_seed(6)
    net = torchvision.models.mnasnet0_5().eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "mine.safetensors"))
    mine = vislib.load_model(str(tmp_path / "mine.safetensors"), arch="mnasnet0_5", device="cpu")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(mine.probabilities(x), net(x).softmax(1))
    file = torchvision.models.get_model_weights("mnasnet0_5").DEFAULT.url.rsplit("/", 1)[1]
    torch.save(net.state_dict(), torch_home / file)
    assert torch.equal(vislib.load_model("mnasnet0_5").net.classifier[1].weight.cpu(), net.classifier[1].weight)


@pytest.mark.parametrize("arch", ["resnet26d", "convnext_atto", "dla34", "mobilenetv4_conv_small", "regnetx_002",
                                  "efficientnet_b0", "densenet121", "cspresnet50"])
def test_every_stage_timms_feature_info_names_ends_at_a_found_entry_of_its_stride(arch):
    """timm's own stage list, against the found catalogue: each stage (a module that holds catalogue
    entries, or is one) ends at an entry whose measured stride is the reduction timm states."""
    fam = family(f"timm:{arch}")
    model = fam.assemble(fam.build(4), [f"class {i}" for i in range(4)], "cpu")
    strides = {info.name: info.stride for info in model.layers()}
    stages = timm.create_model(arch, pretrained=False, num_classes=4).feature_info
    for stage in stages:
        inside = [name for name in strides if name == stage["module"] or name.startswith(stage["module"] + ".")]
        assert inside, (arch, stage["module"], list(strides))
        assert strides[inside[-1]] == stage["reduction"], (arch, stage, inside[-1], strides[inside[-1]])
