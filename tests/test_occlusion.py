"""vislib.occlusion: the incremental map equals Captum's Occlusion; progress, stopping, the preview."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from captum.attr import Occlusion
from PIL import Image

from vislib import incremental
from vislib import occlusion as occ
from vislib.attribution import boxes
from vislib.occlusion import occlusion, occlusion_preview, positions


def captum_map(model, x, target, window, stride, baseline) -> torch.Tensor:
    """The reference of API.md (batched evaluations: the same map as the default, sooner)."""
    fill = baseline if isinstance(baseline, float) else torch.as_tensor(baseline, dtype=x.dtype).reshape(1, -1, 1, 1)
    with model.running() as net:
        return Occlusion(net).attribute(
            x, target=target, sliding_window_shapes=(x.shape[1], window, window), strides=(x.shape[1], stride, stride),
            baselines=fill, perturbations_per_eval=32)[0].mean(0).float().cpu()


def assert_same_map(ours: torch.Tensor, reference: torch.Tensor) -> None:
    assert ours.dtype == torch.float32 and ours.device.type == "cpu" and ours.shape == reference.shape
    scale = reference.abs().max()
    assert scale > 0
    assert (ours - reference).abs().max() <= 1e-4 * scale


@pytest.fixture(scope="module")
def cat_224(lite0, cat):
    x = lite0.preprocess(cat)[None].to(lite0.device)
    with torch.no_grad(), lite0.running() as net:
        return x, int(net(x).argmax())


@pytest.fixture(scope="module")
def exact_224(lite0, cat_224):
    """The 224 px map of the lecture's setting (window 16, stride 8, mean colour), Captum's and ours."""
    x, target = cat_224
    fill = x.mean((2, 3))[0]
    return captum_map(lite0, x, target, 16, 8, fill), occlusion(lite0, x, target, 16, 8, fill)


def test_positions_follow_captum():
    assert positions(224, 16, 8) == list(range(0, 209, 8))
    assert positions(20, 8, 5) == [0, 5, 10, 15]  # the last window hangs over the edge and is clipped
    with pytest.raises(ValueError, match="larger than the picture"):
        positions(8, 16, 8)
    with pytest.raises(ValueError, match="must not be larger than the window"):
        positions(64, 8, 12)


def test_lite0_224_equals_captum(exact_224):
    reference, ours = exact_224
    assert_same_map(ours, reference)


@pytest.mark.parametrize("size, window, stride, baseline", [(80, 12, 6, "mean"), (66, 16, 10, 0.0)])
def test_lite0_small_equals_captum(lite0, cat_224, size, window, stride, baseline):
    x = F.interpolate(cat_224[0], size=(size, size), mode="bilinear")
    fill = x.mean((2, 3))[0] if baseline == "mean" else baseline  # per channel, as the lecture fills
    assert_same_map(occlusion(lite0, x, 281, window, stride, fill), captum_map(lite0, x, 281, window, stride, fill))


@pytest.mark.parametrize("by_index", [False, True], ids=["sliced", "by-index"])
@pytest.mark.parametrize("arch", ["resnet18", "squeezenet1_1"])
def test_random_networks_equal_captum(random_model, arch, by_index, monkeypatch):
    """Residual adds and padded max pooling; fire modules' concatenations and ceil-mode pooling.
    Boxes read copy by copy (a CPU's way) and with index tensors (a GPU's way)."""
    monkeypatch.setattr(boxes, "by_index", lambda device: by_index)
    model = random_model(arch)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert incremental.executor_of(model) is not None  # the fast path, not the fallback
    assert_same_map(occlusion(model, x, 7, 8, 4, [0.5, -0.2, 0.1]), captum_map(model, x, 7, 8, 4, [0.5, -0.2, 0.1]))


def test_lite0_boxes_read_by_index_equal_captum(lite0, cat_224, monkeypatch):
    """The GPU's way of reading boxes, on TF-"same" padding and hanging windows, run here on the CPU."""
    monkeypatch.setattr(boxes, "by_index", lambda device: True)
    x = F.interpolate(cat_224[0], size=(66, 66), mode="bilinear")
    assert_same_map(occlusion(lite0, x, 281, 16, 10, 0.0, batch_size=64), captum_map(lite0, x, 281, 16, 10, 0.0))


def test_race_tries_each_way_twice_then_keeps_the_faster():
    race = occ._Race()
    ways = []
    timings = {False: iter([3.0, 2.0]), True: iter([2.5, 1.5, 9.0, 9.0])}
    for _ in range(6):
        way = race.pick("job")
        ways.append(way)
        race.record("job", way, next(timings[way]))
    assert ways == [False, True, False, True, True, True]  # tries alternate; then 1.5 s beats 2.0 s
    assert race.pick("another job") is False  # each kind of job races on its own


def test_occlusion_off_the_cpu_follows_the_race(lite0, monkeypatch):
    """On a GPU, `_drops` runs the way the race picks and times it; stopped runs are not timed.
    (Faked here: the device's name and a clock; the runs themselves do nothing.)"""
    gpu = SimpleNamespace(net=lite0.net, device=torch.device("cuda:0"))
    monkeypatch.setattr(incremental, "executor_of", lambda model: "executor")
    clock, ways = [0.0], []

    def run(model, x, target, starts, window, fill, out, batch_size, after_batch, engine):
        ways.append(engine is not None)
        clock[0] += 1.0 if engine is None else 0.5  # incremental runs in half the time
        return after_batch is None
    monkeypatch.setattr(occ, "_run_drops", run)
    monkeypatch.setattr(occ, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    x, out = torch.zeros(1, 3, 32, 32), torch.zeros(9)
    occ._drops(gpu, x, 0, [(0, 0)] * 9, 8, 0.0, out, 9, after_batch=lambda done: False)  # stopped: not timed
    for _ in range(5):
        occ._drops(gpu, x, 0, [(0, 0)] * 9, 8, 0.0, out, 9)
    assert ways == [False, False, True, False, True, True]
    cpu = SimpleNamespace(net=lite0.net, device=torch.device("cpu"))
    ways.clear()
    occ._drops(cpu, x, 0, [(0, 0)] * 9, 8, 0.0, out, 9)
    assert ways == [True]  # on a CPU, always incremental


def test_fallback_equals_captum(random_model, monkeypatch):
    """Networks torch.fx cannot trace run whole occluded copies, batched: the same map."""
    model = random_model("resnet18")
    monkeypatch.setattr(incremental, "executor_of", lambda model: None)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert_same_map(occlusion(model, x, 5, 16, 8, 0.0, batch_size=7), captum_map(model, x, 5, 16, 8, 0.0))


def test_untraceable_network_falls_back(random_model):
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :4] if x.sum() > 0 else -x.flatten(1)[:, :4]
    model = dataclasses.replace(random_model("resnet18"), net=DataDependent())
    assert incremental.executor_of(model) is None


def test_progress_reports_and_stops(lite0, cat_224):
    x = F.interpolate(cat_224[0], size=(64, 64), mode="bilinear")
    calls = []

    def progress(step, total, preview=None):
        calls.append((step, total, preview))
        return len(calls) < 2
    result = occlusion(lite0, x, 281, 8, 4, 0.0, progress=progress, batch_size=70)
    assert [(s, t) for s, t, _ in calls] == [(70, 225), (140, 225)]  # after each batch (at least TAIL_BATCH)
    assert isinstance(calls[-1][2], Image.Image) and calls[-1][2].size == (64, 64)
    assert result.shape == (64, 64) and torch.isfinite(result).all()
    # 140 windows (the first 9 rows of 15 and 5 more) were evaluated: the bottom was never covered
    assert result[:8].abs().sum() > 0 and (result[48:] == 0).all()


def test_preview_is_close_and_cheaper(lite0, cat_224, exact_224):
    x, target = cat_224
    reference, _ = exact_224
    steps = []
    preview, info = occlusion_preview(lite0, x, target, 16, 8, x.mean((2, 3))[0],
                                      progress=lambda s, t, preview=None: steps.append((s, t)))
    assert preview.shape == (224, 224)
    assert info["of"] == 27 * 27 and info["evaluations"] < 0.5 * info["of"]
    assert steps[-1] == (info["evaluations"], info["evaluations"])
    assert torch.corrcoef(torch.stack([preview.flatten(), reference.flatten()]))[0, 1] >= 0.9


def test_bad_input_is_one_sentence(lite0):
    with pytest.raises(ValueError, match="one picture"):
        occlusion(lite0, torch.zeros(2, 3, 64, 64), 0)
    with pytest.raises(ValueError, match="one number or one per colour channel"):
        occlusion(lite0, torch.zeros(1, 3, 64, 64), 0, baseline=[0.0, 1.0])
