"""pytorch-grad-cam's CAM variants: each equals the library's own map (same layer, same class) on
efficientnet_lite0 and fashion_cnn, leaves the shared network as found (a stop midway included),
and refuses a layer without a spatial map in one sentence; the random baseline is the library's RandomCAM."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pytorch_grad_cam import AblationCAM, EigenCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torchvision.transforms import functional as TF

import vislib
from vislib import attribution
from vislib.models import LayerError
from vislib.runtime import queue

LIBRARY = {"gradcam_plus_plus": GradCAMPlusPlus, "xgradcam": XGradCAM, "layercam": LayerCAM, "hirescam": HiResCAM,
           "scorecam": ScoreCAM, "ablationcam": AblationCAM, "eigencam": EigenCAM}
BATCHED = ("scorecam", "ablationcam")


@pytest.fixture(scope="module")
def fashion():
    return vislib.load_model("fashion_cnn", device="cpu")


def picture(model, image, size: int) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(image.convert("RGB").resize((size, size))), model.mean, model.std)[None]


def library_map(model, x, target: int, method, layer: str, batch_size: int = 16):
    """The library's own map, on a private copy of the network (no queue, in-place flags off);
    `method` is a name of LIBRARY or the library's class."""
    with model.running() as net:
        plain = copy.deepcopy(net)
    plain._forward_pre_hooks.clear()
    for m in plain.modules():
        if getattr(m, "inplace", None) is True:
            m.inplace = False
    module = dict(plain.named_modules())[layer]
    options = {"batch_size": batch_size} if method == "ablationcam" else {}
    cam = (LIBRARY[method] if isinstance(method, str) else method)(plain, [module], **options)
    if method == "scorecam":
        cam.batch_size = batch_size
    try:
        return torch.from_numpy(cam(input_tensor=x.clone().requires_grad_(), targets=[ClassifierOutputTarget(target)])[0])
    finally:
        cam.activations_and_grads.release()


def test_random_baseline_is_the_librarys_random_cam_seeded_without_the_global_generator(lite0, cat):
    from pytorch_grad_cam import RandomCAM

    from vislib.attribution.cams import gradcam_layer
    x = picture(lite0, cat, 64)
    np.random.seed(3)
    expected_draw = np.random.rand(2)
    np.random.seed(3)
    first = attribution.attribute(lite0, x, "random", seed=5)
    assert np.array_equal(np.random.rand(2), expected_draw)  # numpy's global generator untouched
    np.random.seed(5)  # the library draws its weights from the global generator
    reference = library_map(lite0, x, 281, RandomCAM, gradcam_layer(lite0))
    assert first.shape == (64, 64) and float(first.min()) >= 0 and float(first.max()) == pytest.approx(1.0)
    torch.testing.assert_close(first, reference, rtol=0, atol=1e-4 * float(reference.max()))
    assert torch.equal(attribution.random(lite0, x, seed=5), first)
    assert not torch.equal(attribution.random(lite0, x, seed=6), first)
    assert torch.equal(attribution.random(lite0, x, 7, seed=5), first)  # the class changes nothing


def state(model):
    return ({k: v.clone() for k, v in model.net.state_dict().items()}, [type(m) for m in model.net.modules()],
            [getattr(m, "inplace", None) for m in model.net.modules()])


def assert_as_found(model, before) -> None:
    weights, kinds, flags = before
    after = model.net.state_dict()
    assert all(torch.equal(weights[k], after[k]) for k in weights)
    assert kinds == [type(m) for m in model.net.modules()]  # the ablation layer swapped back
    for m in model.net.modules():
        pre = [h for h in m._forward_pre_hooks.values() if h is not queue.guard]
        assert not (m._forward_hooks or pre or m._backward_hooks)
    assert not any(p.requires_grad for p in model.net.parameters())
    assert flags == [getattr(m, "inplace", None) for m in model.net.modules()]


@pytest.mark.parametrize("method", list(LIBRARY))
def test_each_variant_equals_the_librarys_map_on_lite0(method, lite0, cat):
    # The batched two make one pass per channel: a layer of 80 channels keeps them quick.
    layer = "blocks.3.0" if method in BATCHED else attribution.gradcam_layer(lite0)
    params = {"layer": layer, **({"batch_size": 16} if method in BATCHED else {})}
    x = picture(lite0, cat, 64)
    before = state(lite0)
    ours = attribution.attribute(lite0, x, method, 281, **params)
    reference = library_map(lite0, x, 281, method, layer)
    assert ours.shape == (64, 64) and ours.dtype == torch.float32 and ours.device.type == "cpu"
    assert float((ours - reference).abs().max()) <= 1e-4 * float(reference.abs().max())
    assert reference.max() > 0  # a map, not nothing
    assert_as_found(lite0, before)


@pytest.mark.parametrize("method", list(LIBRARY))
def test_each_variant_equals_the_librarys_map_on_fashion_cnn_at_gradcams_layer(method, fashion, cat):
    x = picture(fashion, cat.convert("L"), 28)
    assert attribution.gradcam_layer(fashion) == "conv3"
    ours = attribution.attribute(fashion, x, method, 3)
    reference = library_map(fashion, x, 3, method, "conv3")
    assert ours.shape == (28, 28)
    assert float((ours - reference).abs().max()) <= 1e-4 * float(reference.abs().max())


def test_the_batched_variants_report_progress_and_a_stop_leaves_the_network_as_found(lite0, cat):
    x = picture(lite0, cat, 32)
    seen = []
    attribution.scorecam(lite0, x, 281, layer="blocks.3.0", batch_size=32,
                         progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 80), (32, 80), (64, 80), (80, 80)]  # before each batch, then the end
    before = state(lite0)
    stopped = attribution.ablationcam(lite0, x, 281, layer="blocks.3.0", batch_size=16,
                                      progress=lambda done, total: done < 16)
    assert torch.equal(stopped, torch.zeros(32, 32))  # the library keeps no partial map
    assert_as_found(lite0, before)


@pytest.mark.parametrize("method, label", [("layercam", "LayerCAM"), ("ablationcam", "Ablation-CAM")])
def test_a_layer_without_a_spatial_map_is_one_sentence(method, label, lite0, cat):
    before = state(lite0)
    with pytest.raises(LayerError) as err:
        attribution.attribute(lite0, picture(lite0, cat, 32), method, 281, layer="classifier")
    assert str(err.value) == f"{label} needs a layer with a spatial map, and 'classifier' of efficientnet_lite0 has none."
    assert_as_found(lite0, before)


def test_the_default_layer_is_gradcams_on_the_torchvision_families(random_model, cat):
    model = random_model("resnet18")
    x = picture(model, cat, 64)
    assert attribution.gradcam_layer(model) == "layer4.1"
    ours = attribution.hirescam(model, x, 5)
    torch.testing.assert_close(ours, library_map(model, x, 5, "hirescam", "layer4.1"), rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch, layer, target, one_picture", [
    ("resnet18", "layer4.1.conv1", 381, [True]),  # inside a residual block: the skip from before it broadcasts
    ("googlenet", "inception5b.branch2", 484, [True, False]),  # an Inception branch: concatenated after it
])
def test_ablation_cam_runs_the_layers_before_its_layer_once_where_it_can(arch, layer, target, one_picture,
                                                                         random_model, cat, monkeypatch):
    model = random_model(arch)
    x = picture(model, cat, 64)
    tried, run_cam = [], attribution.cam_family.run_cam
    monkeypatch.setattr(attribution.cam_family, "run_cam",
                        lambda *a, **k: tried.append(k["one_picture"]) or run_cam(*a, **k))
    before = state(model)
    ours = attribution.ablationcam(model, x, target, layer=layer, batch_size=16)
    reference = library_map(model, x, target, "ablationcam", layer)
    assert tried == one_picture  # one copy in; the library's copies only after a concatenation failed
    assert float(reference.max()) > 0.5
    assert float((ours - reference).abs().max()) <= 1e-4 * float(reference.max())
    assert_as_found(model, before)
