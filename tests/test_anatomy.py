"""Network anatomy: parameters, multiply-adds and shapes of every zoo architecture against torch's own
counts and a real forward pass; geometry against the layer catalogue; the zoo's labels; the CLI."""
import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vislib import anatomy as anat
from vislib.cli import main
from vislib.models import list_models
from vislib.runtime.queue import SharedNetworkError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"
SMALL = {"fashion_cnn": 28}  # every other architecture at 64 px: the same layers, 12x less arithmetic


def _real_pass(model, size):
    """Output shape of every module and torch's FLOP count, from a real forward pass."""
    seen, handles = {}, []
    try:
        with torch.no_grad(), model.running() as net:
            for name, m in net.named_modules():
                if name:
                    handles.append(m.register_forward_hook(
                        lambda _m, _i, o, n=name: seen.__setitem__(n, tuple(o.shape[1:])) if torch.is_tensor(o) else None))
            with FlopCounterMode(display=False) as counter:
                net(torch.randn(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return seen, counter.get_total_flops()


@pytest.mark.parametrize("arch", list_models())
def test_anatomy_agrees_with_torch_on_every_architecture(arch, random_model, flush_denormals):
    model = random_model(arch, 10 if arch == "fashion_cnn" else 1000)
    size = SMALL.get(arch, 64)
    rows = anat.anatomy(model, size)
    modules = dict(model.net.named_modules())
    # parameters: each row's own weights, and together every weight of the network exactly once
    assert all(r["params"] == sum(p.numel() for p in modules[r["name"]].parameters(recurse=False)) for r in rows)
    assert anat.totals(rows)["params"] == sum(p.numel() for p in model.net.parameters())
    # shapes and multiply-adds from a real pass: MACs are torch's FLOPs / 2 (within 1%; in fact exactly)
    seen, flops = _real_pass(model, size)
    assert {r["name"]: tuple(r["output_shape"]) for r in rows} == {r["name"]: seen[r["name"]] for r in rows}
    macs = anat.totals(rows)["macs"]
    assert abs(macs - flops / 2) <= 0.01 * flops / 2 and macs == flops // 2
    # every convolution and linear layer counts (C_in / groups) * k * k MACs per output value
    for r in rows:
        m = modules[r["name"]]
        if isinstance(m, torch.nn.Conv2d):
            values = torch.Size(r["output_shape"]).numel()
            assert r["macs"] == values * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1] * r["calls"]
    # the forward order: strides never fall along the spatial layers
    strides = [r["stride"] for r in rows if r["stride"] is not None]
    assert strides == sorted(strides)


@pytest.mark.parametrize("arch", ["alexnet", "resnet18", "efficientnet_lite0", "googlenet"])
def test_geometry_equals_the_layer_catalogue(arch, random_model, flush_denormals):
    model = random_model(arch)
    rows = {r["name"]: r for r in anat.anatomy(model)}
    for info in model.layers():
        r = rows.get(info.name)
        if r is None:  # a catalogue entry that is a container (a block): its last layer carries the geometry
            continue
        assert (r["stride"], r["receptive_field"], tuple(r["output_shape"])) == \
            (info.stride, info.receptive_field, (info.channels, *info.size)), info.name


def test_alexnet_first_layer_and_textbook_fields(random_model):
    rows = {r["name"]: r for r in anat.anatomy(random_model("alexnet"))}
    first = rows["features.0"]
    assert (first["kind"], first["output_shape"], first["stride"], first["receptive_field"]) == \
        ("conv", (64, 55, 55), 4, 11)
    assert first["params"] == 64 * (11 * 11 * 3 + 1) == 23_296
    assert first["macs"] == 55 * 55 * 64 * 11 * 11 * 3 == 70_276_800
    assert rows["features.12"]["receptive_field"] == 195 and rows["classifier.6"]["stride"] is None
    assert rows["classifier.6"]["output_shape"] == (1000,) and rows["classifier.6"]["stage"] == "head"


def test_resnet_relu_called_twice_is_one_row_with_both_calls(random_model):
    rows = {r["name"]: r for r in anat.anatomy(random_model("resnet18"))}
    relu, conv = rows["layer1.0.relu"], rows["layer1.0.conv2"]
    assert relu["calls"] == 2 and relu["output_shape"] == (64, 56, 56)
    # its last call is after the residual sum, which sees what the widest branch saw
    assert relu["receptive_field"] == conv["receptive_field"] > rows["layer1.0.conv1"]["receptive_field"]
    assert rows["layer2.0.downsample.0"]["kind"] == "pointwise conv"


def test_kinds_and_stages_of_a_mobile_network(random_model):
    rows = anat.anatomy(random_model("efficientnet_lite0"))
    kinds = {r["name"]: r["kind"] for r in rows}
    assert kinds["conv_stem"] == "conv" and kinds["blocks.1.0.conv_dw"] == "depthwise conv"
    assert kinds["blocks.1.0.conv_pwl"] == "pointwise conv" and kinds["classifier"] == "linear"
    parts = anat.stages(rows)
    assert [s["stage"] for s in parts] == ["stride 2", "stride 4", "stride 8", "stride 16", "stride 32", "head"]
    assert [s["size"] for s in parts[:-1]] == [(112, 112), (56, 56), (28, 28), (14, 14), (7, 7)]
    assert sum(s["params"] for s in parts) == anat.totals(rows)["params"] == 4_652_008
    assert sum(s["macs"] for s in parts) == anat.totals(rows)["macs"]


def test_cached_per_fingerprint_and_returns_copies(random_fashion):
    first = anat.anatomy(random_fashion)
    first[0]["params"] = -1
    again = anat.anatomy(random_fashion)
    assert again[0]["params"] == 32 * 49 and again is not first
    assert anat.anatomy(random_fashion, 56)[0]["output_shape"] == (32, 56, 56)  # another size, another entry


@pytest.mark.parametrize("arch", ["alexnet", "vgg16", "resnet18"])
def test_field_box_is_the_centre_cell_clipped(arch, random_model):
    model = random_model(arch)
    rows = {r["name"]: r for r in anat.anatomy(model)}
    if arch == "alexnet":  # cell 27's centre is 4 * 27 + (11 - 1) / 2 - 2 = 111; 11 px round it
        assert anat.field_box(rows["features.0"], 224) == (106, 106, 117, 117)
        assert anat.field_box(rows["classifier.6"], 224) is None
    # the same box as the layer catalogue's (LayerInfo.box) for the centre cell of every layer both know
    for info in model.layers():
        if info.name in rows:
            h, w = info.size
            assert anat.field_box(rows[info.name], 224) == info.box(h // 2, w // 2, 224), info.name


def test_the_anatomy_runs_inside_the_device_queue(random_fashion):
    """The twin carries the shared network's guard: a pass outside running() would be refused."""
    twin = anat.table._meta_twin(random_fashion.net)
    with pytest.raises(SharedNetworkError):
        twin(torch.zeros(1, 3, 28, 28, device="meta"))
    assert all(p.device.type == "cpu" for p in random_fashion.net.parameters())  # the shared weights untouched


def test_imagenet_truth_reads_wordnet_ids(tmp_path):
    for name in ("n01440764_tench.jpg", "n01443537_goldfish.png", "notes.txt", "cat.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert [(p.name, c) for p, c in anat.imagenet_truth(tmp_path)] == [("n01440764_tench.jpg", 0),
                                                                      ("n01443537_goldfish.png", 1)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^No picture in .*empty is named after its WordNet id"):
        anat.imagenet_truth(tmp_path / "empty")
    with pytest.raises(ValueError, match="There is no folder named"):
        anat.imagenet_truth(tmp_path / "missing")


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="the ImageNet samples live outside the repository")
def test_zoo_point_on_a_few_samples(lite0):
    labelled = anat.imagenet_truth(SAMPLES)
    assert len(labelled) == 1000 and labelled[0][1] == 0 and labelled[-1][1] == 999
    steps = []
    point = anat.zoo_point(lite0, labelled[:8], batch_size=4, progress=lambda d, t, **i: steps.append(d) or d < 4)
    assert point["n"] == 4 and steps == [1, 2, 3, 4]  # stopped when the callback said so
    assert point["macs"] == 385_187_552 and point["params"] == 4_652_008 and 0.5 <= point["top1"] <= 1


# ---------------------------------------------------------------- the command line

def test_cli_json(capsys):
    assert main(["anatomy", "--model", "fashion_cnn", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "fashion_cnn" and out["input_size"] == 28
    assert out["totals"] == {"params": 391_914, "macs": 8_752_128, "layers": 15, "weighted_layers": 8}
    first = out["layers"][0]
    assert (first["name"], first["output_shape"], first["params"], first["stride"], first["receptive_field"]) == \
        ("conv1", [32, 28, 28], 1568, 1, 7)


def test_cli_table_and_size(capsys):
    assert main(["anatomy", "--model", "alexnet", "--size", "227"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("alexnet at 227 x 227 px") and "features.0    conv            64 x 56 x 56" in out
    assert "total: 61,100,840 parameters" in out


def test_cli_bad_model_exits_1(capsys):
    assert main(["anatomy", "--model", "lenet-9000"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 'lenet-9000' is neither a network this app knows") and err.count("\n") == 1
    assert main(["anatomy", "--model", "fashion_cnn", "--size", "0"]) == 1
    assert "expected a whole number of at least 1" in capsys.readouterr().err
