"""Attribution maps: every method on every network, equal to Captum where Captum has the method,
the shared network left exactly as found, Grad-CAM finding each of two objects; the registry, the
`explain` command and the page."""
from __future__ import annotations

import copy
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from apptest import captions
from captum.attr import GuidedBackprop, IntegratedGradients, LayerGradCam, Saliency
from PIL import Image
from streamlit.testing.v1 import AppTest
from torchvision.transforms import functional as TF

import vislib
from vislib import attribution
from vislib.attribution import cams, common, gradients
from vislib.cli import main
from vislib.images import sample_images
from vislib.models import LayerError, family, list_models
from vislib.runtime import queue

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LITES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
LIGHT = {"smoothgrad": {"samples": 2}, "integrated_gradients": {"steps": 4, "batch_size": 4},  # few passes: fast
         "rise": {"masks": 8, "batch_size": 8}}
# A pass per channel of the layer (1280 on lite0): checked against the library on lite0 and fashion_cnn
# in tests/test_cam_family.py, too slow for every architecture here.
PER_CHANNEL = {"scorecam", "ablationcam"}


def _random(arch: str) -> vislib.Model:
    fam = family(arch)
    torch.manual_seed(0)
    return fam.assemble(fam.build(1000 if arch != "fashion_cnn" else 10), [f"class {i}" for i in range(1000)], "cpu")


def scores(model: vislib.Model, x: torch.Tensor) -> torch.Tensor:
    """The network's class scores, run the one way a shared network runs."""
    with torch.no_grad(), model.running() as net:
        return net(x)


def snapshot(model: vislib.Model):
    """What must not change: weights, every in-place flag, and hooks (none but the queue's guard)."""
    state = {k: v.clone() for k, v in model.net.state_dict().items()}
    flags = {n: m.inplace for n, m in model.net.named_modules() if hasattr(m, "inplace")}
    return state, flags


def assert_unchanged(model: vislib.Model, before) -> None:
    state, flags = before
    after = model.net.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state)
    assert flags == {n: m.inplace for n, m in model.net.named_modules() if hasattr(m, "inplace")}
    for m in model.net.modules():
        pre = [h for h in m._forward_pre_hooks.values() if h is not queue.guard]
        assert not (m._forward_hooks or pre or m._backward_hooks or m._backward_pre_hooks)
    assert not any(p.requires_grad for p in model.net.parameters())


def picture(model: vislib.Model, image: Image.Image, size: int) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(image.convert("RGB").resize((size, size))), model.mean, model.std)[None]


@pytest.fixture(scope="module")
def cat():
    return sample_images()["chelsea (cat)"]()


@pytest.fixture(scope="module")
def lite0():
    return vislib.load_model("efficientnet_lite0", device="cpu")


# The zoo's families, and two generated ones (a found catalogue and layer; timm's channels-last blocks):
# every method on each of the ~1,450 generated families is bench/zoo_sweep.py's job, not the suite's.
@pytest.mark.parametrize("arch", [*list_models(), "mobilenet_v3_small", "timm:convnext_atto"])
def test_every_method_gives_a_finite_map_of_the_input_size_and_leaves_the_network_alone(arch, cat):
    torch.set_flush_denormal(True)  # random EfficientNets fade into slow denormal floats
    real = arch in LITES
    model = vislib.load_model(arch, device="cpu") if real else _random(arch)
    size = min(96 if real else 64, model.input_size)
    x = picture(model, cat, size)
    target = int(scores(model, x).argmax())
    before = snapshot(model)
    params = {**LIGHT, "occlusion": {"window": size // 4, "stride": size // 4}}
    for method in [m for m in attribution.METHODS if m not in PER_CHANNEL]:
        if method == "lrp" and attribution.relevance.support(model) is not None:
            with pytest.raises(ValueError, match=f"^LRP cannot explain {model.name}: "):
                attribution.attribute(model, x, method, target)
            continue
        result = attribution.attribute(model, x, method, target, **params.get(method, {}))
        assert result.shape == (size, size) and result.dtype == torch.float32 and result.device.type == "cpu"
        assert torch.isfinite(result).all(), method
        if method not in ("gradcam", "guided_gradcam") and attribution.METHODS[method].group == "cams" and not real:
            continue  # random weights may leave no positive evidence (the variants' ReLUs) or flip Eigen-CAM's sign
        if method == "random":
            continue  # random channel weights may be negative on every cell of a small map (the library's ReLU)
        if method in ("gradcam", "guided_gradcam") and not real and not result.any():
            # Allowed only where the paper's ReLU removed evidence that was negative everywhere,
            # which random weights can give (GoogLeNet's near-constant logits do).
            with model.running() as net:
                cam = LayerGradCam(net, model.module(attribution.gradcam_layer(model))).attribute(x, target=target)
            assert cam.max() <= 0
        else:
            assert result.abs().max() > 0, f"{method} is all zero on {arch}"
    assert_unchanged(model, before)
    torch.set_flush_denormal(False)


def test_saliency_equals_captums_saliency_max_over_colour(lite0, cat):
    x = picture(lite0, cat, 96)
    with lite0.running() as net:
        reference = Saliency(net).attribute(x.clone().requires_grad_(), target=281, abs=True)[0].amax(0)
    assert torch.equal(attribution.saliency(lite0, x, 281), reference)


def test_smoothgrad_is_seeded_and_leaves_the_global_random_generator_alone(lite0, cat):
    x = picture(lite0, cat, 64)
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    first = attribution.smoothgrad(lite0, x, 281, samples=2)
    assert torch.equal(torch.rand(4), expected)
    assert torch.equal(attribution.smoothgrad(lite0, x, 281, samples=2), first)
    assert not torch.equal(attribution.smoothgrad(lite0, x, 281, samples=2, seed=1), first)


def test_guided_backprop_equals_captums_on_a_relu_network(cat):
    model = _random("alexnet")
    x = picture(model, cat, 96)
    with model.running() as net:
        plain = copy.deepcopy(net)
    plain._forward_pre_hooks.clear()  # a private copy: no queue to guard
    for m in plain.modules():  # Captum's backward hooks refuse in-place ReLUs
        if hasattr(m, "inplace"):
            m.inplace = False
    reference = GuidedBackprop(plain).attribute(x.clone().requires_grad_(), target=3)[0].abs().amax(0)
    torch.testing.assert_close(attribution.guided_backprop(model, x, 3), reference, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("arch", ["googlenet", "mobilenet_v3_large"])
def test_guided_backprop_reaches_functional_relus_and_other_nonlinearities(arch, cat):
    """GoogLeNet calls F.relu as a function; MobileNetV3 uses Hardswish: module hooks miss both."""
    model = _random(arch)
    x = picture(model, cat, 96)
    target = int(scores(model, x).argmax())
    grad = gradients.guided_gradient(model, x, target)
    assert not torch.allclose(common.colour_max(grad), attribution.saliency(model, x, target), rtol=1e-3, atol=0)


def test_gradcam_picks_the_last_spatial_layer_and_accepts_any_catalogue_layer(lite0, cat):
    assert attribution.gradcam_layer(lite0) == "bn2"
    assert attribution.gradcam_layer(_random("resnet18")) == "layer4.1"
    x = picture(lite0, cat, 96)
    last, earlier = attribution.gradcam(lite0, x, 281), attribution.gradcam(lite0, x, 281, layer="blocks.5.0")
    assert last.shape == earlier.shape == (96, 96) and not torch.allclose(last, earlier)
    assert last.min() >= 0  # ReLU on the map, as in the paper
    with pytest.raises(LayerError, match="efficientnet_lite0 has no layer named 'fc7'"):
        attribution.gradcam(lite0, x, 281, layer="fc7")
    with pytest.raises(LayerError, match="Grad-CAM needs a layer with a spatial map, and 'classifier'"):
        attribution.gradcam(lite0, x, 281, layer="classifier")


def two_objects(left: Image.Image, right: Image.Image, size: int = 224):
    """Two pictures side by side, each half the width, on a grey canvas; their boxes (x0, x1)."""
    canvas = Image.new("RGB", (size, size), (128, 128, 128))
    half = size // 2
    for i, image in enumerate((left, right)):
        canvas.paste(image.convert("RGB").resize((half, half)), (i * half, size // 4))
    return canvas, [(0, half), (half, size)]


def _two_samples():
    if (DATA / "imagenet-samples").is_dir():
        wnids = (DATA / "imagenet-wnids.txt").read_text().split()
        files = [DATA / "imagenet-samples" / f for f in ("n02099601_golden_retriever.jpg", "n07753592_banana.jpg")]
        return [vislib.load_image(f) for f in files], [wnids.index(f.name.split("_")[0]) for f in files]
    return [sample_images()["chelsea (cat)"](), sample_images()["coffee"]()], [281, 967]  # tabby, espresso


def test_gradcam_for_two_classes_peaks_on_each_object(lite0):
    images, classes = _two_samples()
    canvas, boxes = two_objects(*images)
    x = picture(lite0, canvas, 224)
    for target, (x0, x1) in zip(classes, boxes):
        cam = attribution.gradcam(lite0, x, target)
        column = int(cam.argmax()) % cam.shape[1]
        assert x0 <= column < x1, f"class {target}: peak at column {column}, object in [{x0}, {x1})"


@pytest.mark.parametrize("baseline", attribution.BASELINES)
def test_integrated_gradients_is_captums_summed_over_colour_and_adds_up(lite0, cat, baseline):
    x = picture(lite0, cat, 64)
    ours = attribution.integrated_gradients(lite0, x, 281, baseline=baseline, steps=16)
    reference_image = attribution.baseline_image(lite0, x, baseline)
    with lite0.running() as net:
        reference = IntegratedGradients(net).attribute(x, reference_image, target=281, n_steps=16)[0].sum(0)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-6)
    change = float(scores(lite0, x)[0, 281] - scores(lite0, reference_image)[0, 281])
    assert abs(float(ours.sum()) - change) < 0.2 * abs(change)  # completeness, up to a 16-step integral


def test_black_baseline_is_black_in_pixels_and_blur_keeps_the_mean(lite0, cat):
    x = picture(lite0, cat, 64)
    black = attribution.baseline_image(lite0, x, "black")
    assert lite0.to_image(black[0]).getextrema() == ((0, 0), (0, 0), (0, 0))
    blurred = attribution.baseline_image(lite0, x, "blurred")
    assert blurred.shape == x.shape and float((blurred - x).abs().mean()) > 0.05
    assert torch.allclose(attribution.baseline_image(lite0, x, "mean")[0, :, 5, 7], x.mean((0, 2, 3)))
    with pytest.raises(ValueError, match="Unknown baseline 'white'"):
        attribution.baseline_image(lite0, x, "white")


def test_occlusion_fills_with_the_training_mean_by_default_or_the_pictures_mean(lite0, cat):
    x = picture(lite0, cat, 64)
    ours = attribution.occlusion(lite0, x, 281, window=32, stride=16)
    assert torch.equal(ours, attribution.occlusion(lite0, x, 281, 32, 16, 0.0))  # the API's default fill
    mean = attribution.occlusion(lite0, x, 281, window=32, stride=16, baseline="mean")
    assert torch.equal(mean, attribution.occlusion(lite0, x, 281, 32, 16, x.mean((0, 2, 3))))
    assert not torch.equal(ours, mean)
    assert torch.equal(attribution.attribute(lite0, x, "occlusion", 281, window=32, stride=16), ours)


def test_occlusion_curve_is_the_probability_with_the_window_at_each_place(lite0, cat):
    x = picture(lite0, cat, 64)
    centres, probs = attribution.occlusion_curve(lite0, x, 281, row=30, window=16, step=8)
    assert centres == [8, 16, 24, 32, 40, 48, 56] and len(probs) == 7
    covered = x.clone()
    covered[0, :, 22:38, 16:32] = 0.0  # the default fill, as occlusion's
    assert probs[2] == pytest.approx(float(lite0.probabilities(covered)[0, 281]), abs=1e-6)


def test_mistakes_are_one_sentence(lite0, cat):
    x = picture(lite0, cat, 64)
    with pytest.raises(ValueError, match="Unknown attribution method 'lime'; choose one of: saliency"):
        attribution.attribute(lite0, x, "lime")
    with pytest.raises(ValueError, match="The class 1000 does not exist: efficientnet_lite0 has classes 0 to 999."):
        attribution.attribute(lite0, x, "saliency", target=1000)
    with pytest.raises(ValueError, match=r"expected a batch \[1,3,H,W\], got \(3, 64, 64\)"):
        attribution.attribute(lite0, x[0], "saliency")
    with pytest.raises(ValueError, match="Saliency has no parameter 'window'; its parameters are: none."):
        attribution.attribute(lite0, x, "saliency", window=8)
    with pytest.raises(ValueError, match="The parameter samples must be at least 1, not 0."):
        attribution.attribute(lite0, x, "smoothgrad", samples=0)
    with pytest.raises(ValueError, match="The parameter baseline is one of black, blurred, mean, not 'white'."):
        attribution.attribute(lite0, x, "integrated_gradients", baseline="white")


def test_the_network_is_restored_when_captum_fails_midway(lite0, cat, monkeypatch):
    before = snapshot(lite0)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(cams.LayerGradCam, "attribute", broken)
    with pytest.raises(RuntimeError, match="boom"):
        attribution.guided_gradcam(lite0, picture(lite0, cat, 64), 281)
    assert_unchanged(lite0, before)


def test_top_class_is_the_default_target(lite0, cat):
    x = picture(lite0, cat, 96)
    top = int(scores(lite0, x).argmax())
    assert torch.equal(attribution.attribute(lite0, x, "gradcam"), attribution.gradcam(lite0, x, top))


def test_every_method_is_registered_with_a_label_group_explanation_and_its_parameters():
    assert list(attribution.METHODS)[:1] == ["saliency"] and "occlusion" in attribution.METHODS
    for name, method in attribution.METHODS.items():
        assert method.name == name == method.function.__name__  # one name for one idea
        assert method.label and method.group in attribution.GROUPS
        assert 40 <= len(method.explanation) <= 300, name  # a classroom-length sentence or two
        signature = inspect.signature(method.function).parameters
        assert list(signature)[:3] == ["model", "x", "target"] and signature["target"].default is None
        keywords = [p for p in list(signature)[3:] if p != "progress"]  # how a job reports is no parameter
        assert [p.name for p in method.params] == keywords, name
        for spec in method.params:
            assert spec.help and spec.kind, (name, spec.name)
            assert spec.default == signature[spec.name].default
            if spec.default is not None:  # the default is a value the parameter takes, written as text
                assert spec.parse(str(spec.default)) == spec.default, (name, spec.name)
    assert attribution.grouped() == {
        "gradients": ["saliency", "guided_backprop", "smoothgrad", "integrated_gradients"],
        "cams": ["gradcam", "guided_gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam", "scorecam",
                 "ablationcam", "eigencam"],
        "perturbation": ["occlusion", "rise"], "relevance": ["lrp"], "baselines": ["random", "edges"]}
    assert attribution.grouped(["occlusion", "saliency"]) == {"gradients": ["saliency"], "perturbation": ["occlusion"]}


def test_parameters_are_parsed_and_checked_by_the_registry():
    occlusion = attribution.get_method("occlusion")
    assert occlusion.parse(["window=32", "stride = 16", "baseline=mean"]) == {"window": 32, "stride": 16,
                                                                              "baseline": "mean"}
    assert occlusion.parse(["baseline=-0.5"]) == {"baseline": -0.5}
    assert attribution.get_method("gradcam").parse(["layer=blocks.5.0"]) == {"layer": "blocks.5.0"}
    for pairs, message in ((["window=big"], "The parameter window takes a whole number, not 'big'."),
                           (["window"], "A parameter is given as NAME=VALUE, e.g. window=32, not 'window'."),
                           (["colour=3"], "Occlusion has no parameter 'colour'; its parameters are: window, stride, "
                                          "baseline, batch_size."),
                           (["stride=0"], "The parameter stride must be at least 1, not 0."),
                           (["baseline=grey"], 'The parameter baseline takes a number or "mean", not \'grey\'.')):
        with pytest.raises(ValueError) as err:
            occlusion.parse(pairs)
        assert str(err.value) == message
    with pytest.raises(ValueError, match="Unknown attribution method 'lime'; choose one of: saliency"):
        attribution.get_method("lime")


def _explain(tmp_path, photo, *args) -> int:
    return main(["explain", *args, "--out", str(tmp_path / "out"), str(photo)])


@pytest.fixture
def photo(tmp_path, cat, monkeypatch):
    monkeypatch.setenv("VISLIB_DEVICE", "cpu")  # like the lite0 it is compared with (a GPU's TF32 differs a little)
    path = tmp_path / "my cat.jpg"
    cat.save(path, quality=95)
    return path


def test_explain_writes_the_overlay_and_the_raw_map(tmp_path, photo, lite0):
    assert _explain(tmp_path, photo, "--method", "gradcam", "--target", "Tabby") == 0
    amap = np.load(tmp_path / "out" / "my_cat-gradcam-tabby.npy")
    expected = attribution.gradcam(lite0, lite0.preprocess(vislib.load_image(photo))[None], 281)
    np.testing.assert_allclose(amap, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert Image.open(tmp_path / "out" / "my_cat-gradcam-tabby.png").size == (224, 224)


def test_explain_passes_the_methods_parameters(tmp_path, photo, lite0):
    x = lite0.preprocess(vislib.load_image(photo))[None]
    maps = []
    for window in (56, 112):
        assert _explain(tmp_path, photo, "--method", "occlusion", "--target", "281", "--param", f"window={window}",
                        "--param", f"stride={window}") == 0
        maps.append(np.load(tmp_path / "out" / "my_cat-occlusion-tabby.npy"))
        expected = attribution.occlusion(lite0, x, 281, window=window, stride=window)
        np.testing.assert_allclose(maps[-1], expected.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(maps[0], maps[1])  # the window made a difference
    assert _explain(tmp_path, photo, "--method", "gradcam", "--target", "281", "--param", "layer=blocks.5.0") == 0
    np.testing.assert_allclose(np.load(tmp_path / "out" / "my_cat-gradcam-tabby.npy"),
                               attribution.gradcam(lite0, x, 281, layer="blocks.5.0").numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--target", "tabbby"], "error: efficientnet_lite0 has no class named 'tabbby'. Did you mean: tabby"),
    (["--target", "1000"], "error: The class 1000 does not exist: efficientnet_lite0 has classes 0 to 999."),
    (["--method", "lime"], "argument --method: invalid choice: 'lime'"),
    (["--method", "gradcam", "--param", "layer=fc7"], "error: efficientnet_lite0 has no layer named 'fc7'"),
    (["--method", "occlusion", "--param", "window=big"],
     "error: The parameter window takes a whole number, not 'big'."),
    (["--param", "window=8"], "error: Saliency has no parameter 'window'; its parameters are: none."),
    (["--method", "occlusion", "--param", "window=500"], "error: The occlusion window (500 px) is larger than the "
                                                           "picture (224 px)."),
    (["unreadable"], "error: This file is not an image this app can read"),
])
def test_explain_mistakes_are_one_line_and_status_1(tmp_path, cat, capsys, args, message):
    picture_file = tmp_path / "cat.png"
    cat.save(picture_file)
    if args == ["unreadable"]:
        picture_file, args = tmp_path / "notes.png", []
        picture_file.write_text("not a picture")
    # a later --method wins
    assert main(["explain", "--method", "saliency", *args, "--out", str(tmp_path), str(picture_file)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err


def _page() -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.run()
    at.switch_page("app_pages/attribution.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_trust_section_plots_the_sanity_check():
    # the matrix, the scores and the cut-out: tests/test_attribution_page.py
    at = _page()
    at.multiselect(key="attr-sanity").set_value(["gradcam"]).run()
    next(b for b in at.button if b.label == "Run the sanity check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    strip = next(c for c in captions(at) if c.startswith("One row per method"))
    assert strip.endswith("original, classifier, bn2, blocks.6.0" + strip.split("blocks.6.0")[1])
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("rank correlation with the original map" in s for s in specs)