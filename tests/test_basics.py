"""The basics: convolution arithmetic against nn.Conv2d, upsampling against its definitions and the
checkerboard statistic, and the gradient reaching each layer of plain and residual networks."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from vislib.basics import arithmetic as ar
from vislib.basics import depth as dp
from vislib.basics import upsampling as up

# ---------------------------------------------------------------- convolution arithmetic

GRID = list(itertools.product([5, 16, 28, 33], [1, 2, 3, 5, 11], [1, 2, 4], [0, 1, 2, 5], [1, 2, 3]))


def test_output_size_equals_nn_conv2d_over_a_grid():
    checked = 0
    for n, k, s, p, d in GRID:
        conv = nn.Conv2d(2, 3, k, stride=s, padding=p, dilation=d, device="meta")
        if n + 2 * p < d * (k - 1) + 1:  # torch refuses too: a kernel larger than the padded input
            with pytest.raises(RuntimeError):
                conv(torch.empty(1, 2, n, n, device="meta"))
            with pytest.raises(ValueError, match=r"spans \d+ pixels, more than the \d+ of the padded input\.$"):
                ar.output_size(n, k, s, p, d)
            continue
        real = conv(torch.empty(1, 2, n, n, device="meta")).shape
        result = ar.conv_arithmetic(n, 2, k, s, p, d, filters=3)
        assert (result.out, result.out) == tuple(real[2:]) == (ar.output_size(n, k, s, p, d),) * 2
        assert result.params == sum(q.numel() for q in conv.parameters())
        checked += 1
    assert checked > 400


def test_params_and_macs_equal_torch_counts():
    for n, c, k, s, p, f in [(224, 3, 11, 4, 2, 96), (56, 64, 3, 1, 1, 128), (28, 192, 1, 1, 0, 16), (17, 5, 4, 3, 1, 7)]:
        conv = nn.Conv2d(c, f, k, stride=s, padding=p)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            conv(torch.zeros(1, c, n, n))
        result = ar.conv_arithmetic(n, c, k, s, p, filters=f)
        assert result.macs == counter.get_total_flops() // 2
        assert result.params == sum(q.numel() for q in conv.parameters())
        assert ar.conv_arithmetic(n, c, k, s, p, filters=f, bias=False).params == conv.weight.numel()


def test_alexnet_presets_give_55_by_55():
    paper = ar.conv_arithmetic(**{k: v for k, v in ar.PRESETS["AlexNet, first layer (paper)"].items() if k != "note"})
    assert paper.shape == (55, 55, 96) and paper.params == 96 * (11 * 11 * 3 + 1) == 34_944
    assert paper.formulas["output"] == "⌊(224 + 2·2 - (11 - 1) - 1) / 4⌋ + 1 = 55"
    assert paper.formulas["params"] == "96 · (11·11·3 + 1) = 34,944"
    assert paper.formulas["macs"] == "55·55·96 · 11·11·3 = 105,415,200"
    assert paper.leftover == 1  # 228 padded pixels, the last window ends at 227
    nopad = ar.conv_arithmetic(**{k: v for k, v in ar.PRESETS["AlexNet, first layer (227 px, no padding)"].items()
                                  if k != "note"})
    assert nopad.shape == (55, 55, 96) and nopad.leftover == 0
    tv = ar.conv_arithmetic(**{k: v for k, v in ar.PRESETS["AlexNet, torchvision's first layer"].items() if k != "note"})
    assert tv.shape == (55, 55, 64)
    assert ar.output_size(224, 11, 4) == 54  # the paper's numbers without padding do not add up
    assert "54.25" in ar.PRESETS["AlexNet, first layer (paper)"]["note"]


def test_bad_numbers_are_one_sentence():
    with pytest.raises(ValueError, match=r"^The stride must be a whole number of at least 1, not 0\.$"):
        ar.output_size(28, 3, 0)
    with pytest.raises(ValueError, match=r"^The padding must be a whole number of at least 0, not -1\.$"):
        ar.output_size(28, 3, 1, -1)


def test_fully_connected_against_convolution_and_googlenet_bottleneck():
    fc = ar.fc_vs_conv(28, 1, hidden=32, classes=10, kernel=3, filters=32)
    assert fc["fc_first"] == 28 * 28 * 32 + 32 == 25_120 and fc["fc_total"] == 25_120 + 330
    assert fc["conv"] == 3 * 3 * 32 + 32 == 320 and fc["ratio"] == pytest.approx(78.5)
    assert fc["fc_total"] == sum(p.numel() for p in nn.Sequential(nn.Linear(784, 32), nn.Linear(32, 10)).parameters())
    g = ar.bottleneck()
    assert g["direct_params"] == 5 * 5 * 192 * 32 == 153_600
    assert g["reduced_params"] == 192 * 16 + 5 * 5 * 16 * 32 == 15_872
    assert g["saving"] == pytest.approx(9.68, abs=0.01) and g["direct_macs"] == 153_600 * 28 * 28


def test_sliding_equals_conv2d_and_visits_every_window():
    x = torch.randn(3, 20, 20)
    w = torch.randn(3, 5, 5)
    out, corners = ar.sliding(x.numpy(), w, stride=2, padding=1, dilation=2)
    assert out.shape == (ar.output_size(20, 5, 2, 1, 2),) * 2 == (7, 7)
    assert np.allclose(out, F.conv2d(x[None], w[None], stride=2, padding=1, dilation=2)[0, 0].numpy())
    assert corners[:3] == [(0, 0), (0, 2), (0, 4)] and corners[-1] == (12, 12) and len(corners) == 49
    # one window by hand: the dilated taps of the window at corner (2, 4) in the padded picture
    padded = F.pad(x, (1, 1, 1, 1))
    r, c = corners[9]
    assert np.isclose(out[1, 2], float((padded[:, r:r + 9:2, c:c + 9:2] * w).sum()), atol=1e-4)
    with pytest.raises(ValueError, match="The filter has 1 input channels, the picture 3."):
        ar.sliding(x.numpy(), torch.randn(1, 3, 3))


# ---------------------------------------------------------------- upsampling

def test_unpooling_methods_by_definition():
    x = torch.arange(12.0).reshape(3, 2, 2)
    assert torch.equal(up.nearest(x, 2)[0], torch.tensor([[0., 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]))
    assert torch.equal(up.bed_of_nails(x, 2)[0], torch.tensor([[0., 0, 1, 0], [0, 0, 0, 0], [2, 0, 3, 0], [0, 0, 0, 0]]))
    assert up.bilinear(x, 3).shape == (3, 6, 6) and torch.allclose(up.bilinear(torch.ones(1, 4, 4), 2), torch.ones(1, 8, 8))
    a = torch.tensor([[[1., 5, 0, 2], [3, 2, 7, 1], [0, 0, 1, 1], [9, 0, 1, 4]]])
    pooled, unpooled, indices = up.max_pool_unpool(a, 2)
    assert torch.equal(pooled[0], torch.tensor([[5., 7], [9, 4]]))
    assert torch.equal(unpooled, torch.where(torch.isin(a, pooled), a, torch.zeros(())))
    assert torch.equal(indices[0], torch.tensor([[1, 6], [12, 15]]))  # where the maxima were, row-major
    assert torch.equal(up.upsample(pooled, "max unpooling", 2, indices=indices), unpooled)
    with pytest.raises(ValueError, match="^Unknown upsampling method 'magic'"):
        up.upsample(a, "magic")


def test_checkerboard_exactly_when_the_stride_does_not_divide_the_kernel():
    flat = torch.ones(1, 16, 16)
    for k, s in itertools.product(range(1, 8), range(1, 5)):
        t = up.transposed(flat, k, s)
        assert t.shape == (1, 15 * s + k, 15 * s + k)
        uneven = up.unevenness(t, k)
        if k % s:
            assert uneven > 0.5, (k, s, uneven)
        else:
            assert uneven < 1e-6, (k, s, uneven)
        assert up.unevenness(up.resize_convolve(flat, s, k), k) < 1e-6  # resize-then-convolve never
        counts = up.overlap_counts(16, k, s)[k:-k]
        assert (counts.min() == counts.max()) == (k % s == 0)
    # 3 x 3 at stride 2: the inner pixels alternate between 1 and 2 stamps (the checkerboard)
    assert list(up.overlap_counts(4, 3, 2)) == [1, 1, 2, 1, 2, 1, 2, 1, 1]


def test_transposed_convolution_equals_torch_with_its_uniform_kernel():
    x = torch.randn(2, 5, 5)
    layer = nn.ConvTranspose2d(2, 2, 4, stride=2, groups=2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(up.uniform_kernel(2, 4, 2))
        assert torch.allclose(up.transposed(x, 4, 2), layer(x[None])[0])


# ---------------------------------------------------------------- depth

def test_gradient_norms_decay_without_shortcuts_and_not_with_them():
    found = dp.at_initialisation(32, seed=0)
    plain, residual = found["plain"], found["residual"]
    assert plain.shape == residual.shape == (32,)
    assert plain[0] / plain[-1] < 1e-6  # vanished by more than a million times on the way down
    assert 0.1 < residual[0] / residual[-1] < 10  # the shortcut keeps it within a small factor
    assert residual.min() / residual.max() > 0.05
    shallow = dp.at_initialisation(8, seed=0)["plain"]
    assert shallow[0] / shallow[-1] > 1e3 * plain[0] / plain[-1]  # the deeper, the worse


def test_networks_are_seeded_without_the_global_generator():
    before = torch.random.get_rng_state()
    a, b, c = dp.build(8, True, seed=1), dp.build(8, True, seed=1), dp.build(8, True, seed=2)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.stem.weight, c.stem.weight)
    bound = 1 / np.sqrt(16 * 9)  # PyTorch's default range for a 16-channel 3 x 3 convolution
    largest = float(a.convs[0].weight.detach().abs().max())
    assert 0.9 * bound < largest <= bound
    with pytest.raises(ValueError, match="^The depth must be an even number of layers, at least 4, not 7.$"):
        dp.DepthNet(7, False)


def test_training_race_is_reproducible_and_stops():
    threads, seen = torch.get_num_threads(), []
    first = dp.train_race(depth=12, shallow=4, steps=6, batch=16, progress=lambda d, t, **i: seen.append((d, t)))
    again = dp.train_race(depth=12, shallow=4, steps=6, batch=16)
    assert [r["name"] for r in first["runs"]] == ["plain 4 layers", "plain 12 layers", "residual 12 layers"]
    assert [r["loss"] for r in first["runs"]] == [r["loss"] for r in again["runs"]]
    assert seen == [(i, 18) for i in range(1, 19)] and not first["stopped"]
    stopped = dp.train_race(depth=12, shallow=4, steps=6, batch=16, progress=lambda d, t, **i: d < 8)
    assert stopped["stopped"] and [len(r["loss"]) for r in stopped["runs"]] == [6, 2, 0]
    assert all(0 <= r["accuracy"] <= 1 for r in stopped["runs"])
    assert torch.get_num_threads() == threads  # one thread per step, and the count put back
