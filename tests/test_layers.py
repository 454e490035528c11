"""The measured layer geometry equals the truth that gradients tell.

For a cell of a layer, the input pixels it depends on are those where the gradient of the cell
(summed over channels) is not zero (tests/receptive.py). Their bounding box must be
`LayerInfo.box` of that cell.
"""
from __future__ import annotations


import pytest
import torch
from receptive import brute_force_boxes, wiring
from torch import nn

from vislib.layers import LayerInfo, measure
from vislib.models import family

def _cells(info: LayerInfo) -> list[tuple[int, int]]:
    """The centre cell (its field inside the picture for most layers), one near the top-left corner
    (clipped on the left and top), and the last one (clipped on the right and bottom)."""
    h, w = info.size
    return sorted({(h // 2, w // 2), (min(1, h - 1), min(2, w - 1)), (h - 1, w - 1)})


CASES = {  # architecture -> (input sizes, layers to probe: None means the whole catalogue)
    # Each network is probed at its input size; an odd size as well where a floor can go wrong.
    # VGG at 112 pixels keeps the test fast: its windows do not depend on the input size.
    "resnet18": ((224,), ["relu", "maxpool", "layer1.1", "layer2.0", "layer3.1"]),
    "resnet18@97": ((97,), None),
    "alexnet": ((224,), None),
    "vgg16": ((112,), ["features.4", "features.9", "features.16", "features.23"]),
    "googlenet": ((224,), ["conv1", "maxpool1", "conv3", "maxpool2", "inception3b", "maxpool3", "inception4a"]),
    "squeezenet1_1": ((224,), None),  # its first convolution leaves the last row and column unread
    "mobilenet_v3_large": ((224,), ["features.0", "features.2", "features.4", "features.7", "features.10"]),
    # the 5x5 stride-2 stages (blocks.2.0, blocks.5.0) have TensorFlow's uneven "same" padding
    "efficientnet_lite0": ((224, 203), ["bn1", "blocks.1.0", "blocks.2.0", "blocks.3.0", "blocks.5.0"]),
    "fashion_cnn": ((28,), None),
}


@pytest.mark.parametrize("arch", list(CASES))
def test_geometry_matches_gradients(arch, flush_denormals):
    sizes, names = CASES[arch]
    arch = arch.split("@")[0]
    fam = family(arch)
    torch.manual_seed(0)
    net = fam.build(1000).eval()
    catalogue = fam.catalogue(net)
    if names is not None:
        catalogue = [(n, k) for n, k in catalogue if n in names]
        assert len(catalogue) == len(names)
    unclipped = 0
    for size in sizes:
        infos = measure(net, size, catalogue)
        probes = [(info.name, r, c) for info in infos for r, c in _cells(info)]
        truth = brute_force_boxes(wiring(net), size, probes)
        by_name = {info.name: info for info in infos}
        for (name, row, col), box in zip(probes, truth):
            assert by_name[name].box(row, col, size) == box, (arch, size, name, row, col)
            x0, y0, x1, y1 = box
            lo, hi = by_name[name].reach
            if lo < x0 and x1 < hi and lo < y0 and y1 < hi:  # the whole field is inside what the layer reads
                unclipped += 1
                assert x1 - x0 == y1 - y0 == by_name[name].receptive_field
    assert unclipped >= 2  # the test did check some receptive fields at their full size


def _info(rf: int, stride: int, offset: float, reach=None) -> LayerInfo:
    return LayerInfo("x", "conv", 1, stride, rf, offset, (10, 10), reach)


def test_box_inside_the_picture():
    info = _info(rf=11, stride=4, offset=1.5 + 3.5)  # e.g. an 11x11 stride-4 window without padding
    assert info.box(0, 0, 224) == (0, 0, 11, 11)
    assert info.box(2, 3, 224) == (12, 8, 23, 19)


def test_box_is_clipped_at_the_borders():
    info = _info(rf=7, stride=2, offset=0.0)  # centre of cell 0 on pixel 0: padding of 3
    assert info.box(0, 0, 224) == (0, 0, 4, 4)
    assert info.box(0, 111, 224) == (219, 0, 224, 4)
    assert info.box(111, 111, 224) == (219, 219, 224, 224)
    assert info.box(5, 0, 224) == (0, 7, 4, 14)
    huge = _info(rf=435, stride=32, offset=0.0)
    assert huge.box(3, 3, 224) == (0, 0, 224, 224)
    assert huge.box(0, 6, 224) == (0, 0, 224, 218)


def test_box_with_an_even_field():
    info = _info(rf=6, stride=2, offset=0.5)  # a 2x2 pool after two 3x3 convolutions (VGG's first pool)
    assert info.box(0, 0, 224) == (0, 0, 4, 4)
    assert info.box(1, 1, 224) == (0, 0, 6, 6)
    assert info.box(4, 2, 224) == (2, 6, 8, 12)


def test_box_stops_where_the_layer_stops_reading():
    info = _info(rf=15, stride=4, offset=3.0, reach=(0, 223))
    assert info.box(54, 54, 224) == (212, 212, 223, 223)
    assert info.box(0, 0, 224) == (0, 0, 11, 11)
    assert _info(rf=15, stride=4, offset=3.0).box(54, 54, 224) == (212, 212, 224, 224)


def test_measure_reports_sizes_and_same_padding(flush_denormals):
    lite0 = family("efficientnet_lite0")
    net = lite0.build(10).eval()
    infos = {i.name: i for i in measure(net, 224, lite0.catalogue(net))}
    # a 5x5 stride-2 convolution with TensorFlow's "same" padding puts one padding pixel on the left
    assert (infos["blocks.2.0"].stride, infos["blocks.2.0"].offset) == (8, 7.0)
    assert infos["bn2"].size == (7, 7) and infos["bn2"].stride == 32
    odd = {i.name: i for i in measure(net, 203, lite0.catalogue(net))}
    assert odd["bn2"].size == (7, 7) and odd["bn1"].size == (102, 102)


def test_measure_names_what_it_cannot_find():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 2))
    infos = measure(net, 32, [("0", "conv")])
    assert infos == [LayerInfo("0", "conv", 4, 1, 3, 1.0, (30, 30), (0, 32))]
    with pytest.raises(RuntimeError, match=r"not measured: \['1'\]"):
        measure(net, 32, [("0", "conv"), ("1", "conv")])
