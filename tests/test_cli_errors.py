"""Every mistake a sentence: each command of `vislib` with a bad model, layer, channel, class and file.

Each case must end with exit status 1 and exactly one line on stderr, `error: <a sentence>`, that
names what was wrong - never a traceback, and before any long work (so the cases are fast: the
bundled fashion_cnn, 2 steps, 32 px). In process through `vislib.cli.main`; the two cases the
engine issue reported, and one of each kind, also in a real process.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vislib.cli import COMMANDS, main

M = ["--model", "fashion_cnn"]
FAST = ["--steps", "2", "--size", "32"]  # should a refusal be missed, the run is still short

# command -> {mistake: (argv, a word the sentence must contain)}. IMG is a picture, TXT a text file
# named like a picture, NPY a features array, OUT a folder to write into, MISSING no file at all.
# A mistake a command cannot make (it has no such argument) is left out, and listed in NOT_APPLICABLE.
CASES: dict[str, dict[str, tuple[list[str], str]]] = {
    "models": {
        "argument": (["models", "--no-such-option"], "--no-such-option"),
    },
    "predict": {
        "model": (["predict", "--model", "no_such_net", "IMG"], "no_such_net"),
        "file": (["predict", *M, "MISSING"], "MISSING"),
        "unreadable": (["predict", "--model", "TXT", "--arch", "resnet18", "IMG"], "checkpoint"),  # text as checkpoint
        "argument": (["predict", *M, "--top", "0", "IMG"], "--top"),
    },
    "train-fashion": {
        "file": (["train-fashion", "--epochs", "1", "--out", "TXT/fashion.safetensors"], "TXT"),  # a file as folder
        "file name": (["train-fashion", "--epochs", "1", "--out", "OUT/fashion.txt"], ".safetensors"),
        "argument": (["train-fashion", "--epochs", "0"], "--epochs"),
    },
    "explain": {
        "model": (["explain", "IMG", "--method", "saliency", "--model", "no_such_net", "--out", "OUT"], "no_such_net"),
        "layer": (["explain", "IMG", "--method", "gradcam", "--param", "layer=no.such.layer", *M, "--out", "OUT"],
                  "no.such.layer"),
        "class": (["explain", "IMG", "--method", "saliency", "--target", "99", *M, "--out", "OUT"], "99"),
        "class name": (["explain", "IMG", "--method", "saliency", "--target", "no such class", *M, "--out", "OUT"],
                       "no such class"),
        "file": (["explain", "MISSING", "--method", "saliency", *M, "--out", "OUT"], "MISSING"),
        "unreadable": (["explain", "TXT", "--method", "saliency", *M, "--out", "OUT"], "not an image"),
        "argument": (["explain", "IMG", "--method", "no_such_method", *M, "--out", "OUT"], "no_such_method"),
    },
    "patches": {
        "model": (["patches", "--model", "no_such_net", "--layer", "conv2", "--collection", "samples",
                   "--out", "OUT/p.npz"], "no_such_net"),
        "layer": (["patches", *M, "--layer", "no.such.layer", "--collection", "samples", "--out", "OUT/p.npz"],
                  "no.such.layer"),
        "channel": (["patches", *M, "--layer", "conv2", "--collection", "samples", "--channel", "99999",
                     "--png", "OUT"], "99999"),
        "file": (["patches", *M, "--layer", "conv2", "--collection", "MISSING", "--out", "OUT/p.npz"], "MISSING"),
        "unreadable": (["patches", *M, "--state", "TXT", "--collection", "samples", "--channel", "1", "--png", "OUT"],
                       "TXT"),
    },
    "embed": {
        "model": (["embed", "samples", "--model", "no_such_net"], "no_such_net"),
        "layer": (["embed", "samples", *M, "--layer", "no.such.layer", "--method", "pca"], "no.such.layer"),
        "file": (["embed", "MISSING.npy"], "MISSING.npy"),
        "unreadable": (["embed", "TXT.npy"], "TXT.npy"),
        "argument": (["embed", "NPY", "--out", "OUT/map.txt"], ".csv"),
    },
    "classvis": {
        "model": (["classvis", "1", "--model", "no_such_net", "--steps", "2", "--out", "OUT/c.png"], "no_such_net"),
        "class": (["classvis", "99", *M, "--steps", "2", "--size", "32", "--out", "OUT/c.png"], "99"),
        "class name": (["classvis", "no such class", *M, "--steps", "2", "--size", "32", "--out", "OUT/c.png"],
                       "no such class"),
        "file": (["classvis", "1", *M, "--steps", "2", "--out", "MISSING/c.png"], "MISSING"),
    },
    "fool": {
        "model": (["fool", "IMG", "1", "--model", "no_such_net", "--max-steps", "2", "--out", "OUT/f.png"],
                  "no_such_net"),
        "class": (["fool", "IMG", "99", *M, "--max-steps", "2", "--out", "OUT/f.png"], "99"),
        "file": (["fool", "MISSING", "1", *M, "--max-steps", "2", "--out", "OUT/f.png"], "MISSING"),
        "unreadable": (["fool", "TXT", "1", *M, "--max-steps", "2", "--out", "OUT/f.png"], "not an image"),
    },
    "dream": {
        "model": (["dream", "IMG", "conv2", "--model", "no_such_net", "--out", "OUT/d.png"], "no_such_net"),
        "layer": (["dream", "IMG", "no.such.layer", *M, "--octaves", "1", "--steps-per-octave", "2", "--size", "32",
                   "--out", "OUT/d.png"], "no.such.layer"),
        "channel": (["dream", "IMG", "conv2:99999", *M, "--octaves", "1", "--steps-per-octave", "2", "--size", "32",
                     "--out", "OUT/d.png"], "99999"),
        "file": (["dream", "MISSING", "conv2", *M, "--out", "OUT/d.png"], "MISSING"),
        "unreadable": (["dream", "TXT", "conv2", *M, "--out", "OUT/d.png"], "not an image"),
    },
    "invert": {
        "model": (["invert", "IMG", "conv2", "--model", "no_such_net", "--steps", "2", "--out", "OUT/i.png"],
                  "no_such_net"),
        "layer": (["invert", "IMG", "no.such.layer", *M, "--steps", "2", "--out", "OUT/i.png"], "no.such.layer"),
        "file": (["invert", "MISSING", "conv2", *M, "--steps", "2", "--out", "OUT/i.png"], "MISSING"),
        "unreadable": (["invert", "TXT", "conv2", *M, "--steps", "2", "--out", "OUT/i.png"], "not an image"),
    },
    "texture": {
        "model": (["texture", "brick", "--model", "no_such_net", *FAST, "--out", "OUT/t.png"], "no_such_net"),
        "layer": (["texture", "brick", *M, "--layers", "conv2,no.such.layer", *FAST, "--out", "OUT/t.png"],
                  "no.such.layer"),
        "file": (["texture", "MISSING", *M, *FAST, "--out", "OUT/t.png"], "MISSING"),
        "unreadable": (["texture", "TXT", *M, *FAST, "--out", "OUT/t.png"], "not an image"),
    },
    "style": {
        "model": (["style", "IMG", "brick", "--model", "no_such_net", *FAST, "--out", "OUT/s.png"], "no_such_net"),
        "layer": (["style", "IMG", "brick", *M, "--layers", "no.such.layer", *FAST, "--out", "OUT/s.png"],
                  "no.such.layer"),
        "content layer": (["style", "IMG", "brick", *M, "--content-layer", "no.such.layer", *FAST,
                           "--out", "OUT/s.png"], "no.such.layer"),
        "file": (["style", "IMG", "MISSING", *M, *FAST, "--out", "OUT/s.png"], "MISSING"),
        "unreadable": (["style", "TXT", "brick", *M, *FAST, "--out", "OUT/s.png"], "not an image"),
    },
    "atlas": {
        "model": (["atlas", "build", "--out", "OUT/atlas", "--model", "no_such_net", "--layers", "conv2",
                   "--collection", "samples"], "no_such_net"),
        "layer": (["atlas", "build", "--out", "OUT/atlas", *M, "--layers", "conv2,no.such.layer", "--collection",
                   "samples", "--no-visualize"], "no.such.layer"),
        "file": (["atlas", "build", "--out", "OUT/atlas", *M, "--layers", "conv2", "--collection", "MISSING",
                  "--no-visualize"], "MISSING"),
        "unreadable": (["atlas", "show", "--out", "IMG"], "IMG"),
        "argument": (["atlas", "build", "--out", "OUT/atlas", *M], "--layers"),
    },
    "evaluate": {
        "model": (["evaluate", "--model", "no_such_net", "--methods", "saliency", "--collection", "samples", "--out",
                   "OUT/b.csv"], "no_such_net"),
        "file": (["evaluate", *M, "--methods", "saliency", "--collection", "MISSING", "--out", "OUT/b.csv"], "MISSING"),
        "argument": (["evaluate", *M, "--methods", "no_such_method", "--collection", "samples", "--out", "OUT/b.csv"],
                     "no_such_method"),
    },
    "anatomy": {
        "model": (["anatomy", "--model", "no_such_net"], "no_such_net"),
        "file": (["anatomy", "--model", "MISSING"], "MISSING"),
        "unreadable": (["anatomy", "--model", "TXT", "--arch", "resnet18"], "checkpoint"),
        "argument": (["anatomy", "--size", "0"], "--size"),
    },
}

# What a command has no argument for, so cannot get wrong. Kept explicit: a new command, or a new
# argument of an old one, shows up here as a failing test until its cases are written.
NOT_APPLICABLE = {
    "models": {"model", "layer", "channel", "class", "file"},
    "predict": {"layer", "channel", "class"},
    "train-fashion": {"model", "layer", "channel", "class"},
    "explain": {"channel"},
    "patches": {"class"},
    "embed": {"channel", "class"},
    "classvis": {"layer", "channel"},
    "fool": {"layer", "channel"},
    "dream": {"class"},
    "invert": {"channel", "class"},  # a layer:channel is a layer it does not have
    "texture": {"channel", "class"},
    "style": {"channel", "class"},
    "atlas": {"channel", "class"},
    "evaluate": {"layer", "channel", "class"},
    "anatomy": {"layer", "channel", "class"},
}
MISTAKES = ("model", "layer", "channel", "class", "file")

# Cases that fail today because of code outside the files of the command line's owner; the lead
# reconciles them (strict=False: they pass as soon as the code is fixed).
KNOWN: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("cli-errors")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "img.png")
    (folder / "txt.png").write_text("this is not a picture\n")
    (folder / "txt.npy").write_text("this is not an array\n")
    np.save(folder / "features.npy", np.random.default_rng(0).normal(size=(12, 5)).astype(np.float32))
    (folder / "out").mkdir()
    return {"IMG": str(folder / "img.png"), "TXT": str(folder / "txt.png"), "TXT.npy": str(folder / "txt.npy"),
            "NPY": str(folder / "features.npy"), "OUT": str(folder / "out"), "MISSING": str(folder / "missing.png"),
            "MISSING.npy": str(folder / "missing.npy")}


def filled(argv: list[str], files: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        head, sep, tail = arg.partition("/")
        out.append(files[arg] if arg in files else files[head] + sep + tail if head in files and sep else arg)
    return out


def check(status: int, out: str, err: str, word: str, files: dict[str, str]) -> None:
    assert "Traceback" not in out + err, err
    lines = err.splitlines()
    assert status == 1, f"exit status {status}, stderr: {err!r}"
    assert len(lines) == 1, f"stderr should be one line, got {len(lines)}: {err!r}"
    sentence = lines[0]
    assert sentence.startswith("error: ") and sentence.endswith((".", "?", "!")), sentence
    assert files.get(word, word) in sentence, f"{word!r} not named in: {sentence}"


ALL = [(command, mistake) for command, cases in CASES.items() for mistake in cases]


@pytest.mark.parametrize("command, mistake", [
    pytest.param(c, m, marks=pytest.mark.xfail(strict=False, reason=KNOWN[c, m])) if (c, m) in KNOWN else (c, m)
    for c, m in ALL], ids=[f"{c}-{m}" for c, m in ALL])
def test_a_mistake_is_one_sentence_and_status_1(command, mistake, files, capsys):
    argv, word = CASES[command][mistake]
    status = main(filled(argv, files))
    out, err = capsys.readouterr()
    check(status, out, err, word, files)


def test_every_command_has_its_cases():
    assert set(CASES) == set(COMMANDS) == set(NOT_APPLICABLE)
    for command in COMMANDS:
        covered = {m.split()[0] for m in CASES[command]} | {"file" if "unreadable" in CASES[command] else ""}
        missing = set(MISTAKES) - covered - NOT_APPLICABLE[command]
        assert not missing, f"{command}: no case for a bad {', '.join(sorted(missing))}"
        assert not (covered & NOT_APPLICABLE[command]), f"{command}: a case for a mistake marked not applicable"


def test_predict_reports_an_unreadable_picture_in_its_place(files, capsys):
    """The one exception to one line on stderr: predict answers every picture, the bad ones with
    their sentence in place (stdout), and then exits 1."""
    status = main(["predict", *M, "--json", files["TXT"], files["IMG"]])
    out, err = capsys.readouterr()
    assert status == 1 and err == "" and "Traceback" not in out
    bad, good = out.splitlines()
    assert '"error"' in bad and "not an image" in bad and '"top"' in good


def test_help_exits_0_for_every_command(capsys):
    for command in COMMANDS:
        assert main([command, "--help"]) == 0
        assert capsys.readouterr().out.startswith("usage:")
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert all(command in listing for command in COMMANDS)


def test_no_command_and_an_unknown_command_are_one_sentence(capsys):
    for argv, word in [([], "COMMAND"), (["no-such-command"], "no-such-command")]:
        status = main(argv)
        out, err = capsys.readouterr()
        check(status, out, err, word, {})


@pytest.mark.parametrize("command, mistake", [("embed", "layer"), ("dream", "channel"), ("predict", "model"),
                                              ("invert", "file")])
def test_in_a_real_process_no_traceback_reaches_stderr(command, mistake, files, tmp_path):
    """`python -m vislib` from another folder, importing the installed package: the issue's two cases and more."""
    argv, word = CASES[command][mistake]
    run = subprocess.run([sys.executable, "-m", "vislib", *filled(argv, files)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=180)
    if (command, mistake) in KNOWN and run.returncode != 1:
        pytest.xfail(KNOWN[command, mistake])
    check(run.returncode, run.stdout, run.stderr, word, files)
