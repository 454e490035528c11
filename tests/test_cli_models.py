"""`vislib models --all` and a person's own network on every command: `--model FILE --arch NAME
--labels FILE` for a checkpoint of any generated architecture, `--input-size`, `--mean`, `--std` for a
whole-network file. Random-weight checkpoints and small pictures made in tmp_path; in process through
`vislib.cli.main`, one case also in a real process."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file

from vislib.cli import COMMANDS, build_parser, main
from vislib.models import list_models

LABELS = ["apple", "banana", "cherry"]
OWN_OPTIONS = {"--arch", "--labels", "--input-size", "--mean", "--std"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A picture, a resnet18 checkpoint of 3 classes (random weights), its labels and a labels file of 2."""
    folder = tmp_path_factory.mktemp("own")
    Image.fromarray((np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)).save(folder / "pic.png")
    torch.manual_seed(0)
    save_file(torchvision.models.get_model("resnet18", num_classes=3).state_dict(), folder / "fruit.safetensors")
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (folder / "two.txt").write_text("apple\nbanana\n")
    (folder / "junk.pt2").write_bytes(b"not a network")
    return {"IMG": str(folder / "pic.png"), "CKPT": str(folder / "fruit.safetensors"),
            "LABELS": str(folder / "labels.txt"), "TWO": str(folder / "two.txt"), "PT2": str(folder / "junk.pt2"),
            "OUT": str(folder / "out")}


def filled(argv, files):
    return [files.get(a, a) for a in argv]


def one_sentence(err: str, word: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0][-1] in ".?!", err
    assert "Traceback" not in err and word in lines[0], err


# ---------------------------------------------------------------- vislib models --all

def test_all_lists_every_family_by_name(capsys):
    assert main(["models", "--all"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert len(names) > 1000 and len(set(names)) == len(names)
    assert all(name and " " not in name for name in names)  # names only, one a line
    assert {"convnext_tiny", "timm:resnet26d", "resnet18", "fashion_cnn"} <= set(names)
    zoo = list_models()
    assert names[:len(zoo)] == zoo  # the zoo's first, then torchvision's, then timm's
    first_timm = next(i for i, n in enumerate(names) if n.startswith("timm:"))
    assert names.index("convnext_tiny") < first_timm and all(n.startswith("timm:") for n in names[first_timm:])


def test_search_filters_in_any_case(capsys):
    assert main(["models", "--all", "--search", "ConvNeXt_T"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert {"convnext_tiny", "timm:convnext_tiny"} <= set(names)
    assert all("convnext_t" in n.lower() for n in names)
    assert main(["models", "--search", "resnet26d", "--json"]) == 0  # --search alone implies --all
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"name": "timm:resnet26d"} in rows and all("resnet26d" in r["name"] and set(r) == {"name"} for r in rows)


def test_state_of_a_short_list_and_refusals(capsys):
    assert main(["models", "--search", "timm:resnet26d", "--state", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["timm:resnet26d"]
    assert rows[0]["state"] in {"ready", "download", "unavailable"} and rows[0]["detail"]
    assert main(["models", "--all", "--state"]) == 1  # 1,400 networks would each be built: refused at once
    out, err = capsys.readouterr()
    assert out == ""
    one_sentence(err, "--search")
    assert main(["models", "--search", "resnetz18"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    one_sentence(err, "resnetz18")


# ---------------------------------------------------------------- a person's checkpoint on several commands

def test_every_command_with_a_network_takes_the_same_options():
    taking = []
    for name in COMMANDS:
        parser = build_parser(only=name)
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]
        flags = {flag for action in sub._actions for flag in action.option_strings}
        if "--model" in flags:
            taking.append(name)
            assert OWN_OPTIONS <= flags, name
    assert {"predict", "explain", "anatomy", "atlas", "patches", "embed", "evaluate", "classvis", "fool", "dream",
            "invert", "texture", "style"} <= set(taking)


def test_predict_with_a_checkpoint_prints_the_persons_labels(files, capsys):
    assert main(["predict", "--json", *filled(["IMG", "--model", "CKPT", "--arch", "resnet18", "--labels", "LABELS"],
                                              files)]) == 0
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(t["label"] for t in line["top"]) == LABELS  # 3 classes: all three, by probability
    assert all(LABELS[t["index"]] == t["label"] for t in line["top"])
    assert abs(sum(t["prob"] for t in line["top"]) - 1) < 1e-4


def test_explain_with_a_checkpoint_and_a_class_by_its_name(files, capsys):
    argv = ["IMG", "--method", "gradcam", "--target", "banana", "--model", "CKPT", "--arch", "resnet18",
            "--labels", "LABELS", "--out", "OUT"]
    assert main(["explain", *filled(argv, files)]) == 0
    assert "gradcam for banana (1)" in capsys.readouterr().out
    amap = np.load(f"{files['OUT']}/pic-gradcam-banana.npy")
    assert amap.ndim == 2 and np.isfinite(amap).all()


def test_anatomy_of_a_checkpoint_has_its_classes(files, capsys):
    assert main(["anatomy", "--json", *filled(["--model", "CKPT", "--arch", "resnet18", "--labels", "LABELS"],
                                              files)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["model"] == "fruit.safetensors" and found["input_size"] == 224
    assert found["layers"][-1]["output_shape"] == [3]  # fc: 512 -> 3
    assert found["totals"]["params"] == sum(p.numel() for p in torchvision.models.resnet18(num_classes=3).parameters())


def test_a_timm_checkpoint(tmp_path, files, capsys):
    import timm
    torch.manual_seed(0)
    save_file(timm.create_model("resnet26d", num_classes=3).state_dict(), tmp_path / "r26d.safetensors")
    argv = ["predict", "--json", files["IMG"], "--model", str(tmp_path / "r26d.safetensors"), "--arch",
            "timm:resnet26d", "--labels", files["LABELS"], "--top", "2"]
    assert main(argv) == 0
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(line["top"]) == 2 and {t["label"] for t in line["top"]} <= set(LABELS)


MISTAKES = {
    "a wrong --arch": (["predict", "IMG", "--model", "CKPT", "--arch", "resnet34"], "resnet34"),
    "a mistyped --arch": (["explain", "IMG", "--method", "saliency", "--model", "CKPT", "--arch", "resnet1",
                           "--out", "OUT"], "resnet18"),  # the close name is suggested
    "a labels file of another count": (["anatomy", "--model", "CKPT", "--arch", "resnet18", "--labels", "TWO"],
                                       "labels"),
    "a missing labels file": (["predict", "IMG", "--model", "CKPT", "--arch", "resnet18", "--labels", "MISSING.txt"],
                              "MISSING.txt"),
    "--mean of two numbers": (["predict", "IMG", "--model", "PT2", "--mean", "1,2"], "--mean"),
    "--mean on 0..255": (["predict", "IMG", "--model", "PT2", "--mean", "124,116,104"], "--mean"),
    "--std of 0": (["dream", "IMG", "conv1", "--model", "PT2", "--std", "0,1,1", "--out", "OUT_PNG"], "--std"),
    "--input-size 0": (["anatomy", "--model", "PT2", "--input-size", "0"], "--input-size"),
    "--input-size for a checkpoint": (["predict", "IMG", "--model", "CKPT", "--arch", "resnet18", "--input-size",
                                       "64"], "whole-network"),
    "--arch with a network's name": (["predict", "IMG", "--model", "resnet18", "--arch", "resnet18"], "--arch"),
    "a folder as --model": (["anatomy", "--model", "OUT_DIR"], "folder"),
}


@pytest.mark.parametrize("argv, word", MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_is_one_sentence_and_status_1(argv, word, files, capsys, tmp_path):
    files = {**files, "OUT_DIR": str(tmp_path), "OUT_PNG": str(tmp_path / "dream.png")}
    assert main(filled(argv, files)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    one_sentence(err, word)


def test_in_a_real_process_no_traceback(files, tmp_path):
    run = subprocess.run([sys.executable, "-m", "vislib", *filled(["predict", "IMG", "--model", "CKPT", "--arch",
                                                                  "resnet18", "--labels", "TWO"], files)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    one_sentence(run.stderr, "labels")


# ---------------------------------------------------------------- a whole-network file

@pytest.mark.skipif(importlib.util.find_spec("vislib.models.exported") is None,
                    reason="whole-network files are not readable in this version")
def test_a_whole_network_file_with_its_size_mean_std_and_labels(files, tmp_path, capsys):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    program = torch.export.export(net, (torch.randn(2, 3, 32, 32),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "tiny.pt2")
    base = ["predict", "--json", files["IMG"], "--model", str(tmp_path / "tiny.pt2"), "--input-size", "32",
            "--labels", files["LABELS"], "--std", "0.25,0.25,0.25"]
    tops = []
    for mean in ("0.5,0.5,0.5", "0.1,0.9,0.1"):
        assert main([*base, "--mean", mean]) == 0
        [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert sorted(t["label"] for t in line["top"]) == LABELS
        tops.append({t["label"]: t["prob"] for t in line["top"]})
    assert tops[0] != tops[1]  # --mean reaches the network's preprocessing
    assert main(["anatomy", "--json", "--model", str(tmp_path / "tiny.pt2"), "--input-size", "32"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["input_size"] == 32 and found["layers"][0]["output_shape"] == [4, 32, 32]
