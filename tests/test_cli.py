"""`python -m vislib` and `vislib.predict.classify`, on pictures made in tmp_path.

Exit status: 0 all went well, 1 anything a person caused (one sentence on stderr, or one error
per unreadable picture in its place); see tests/test_cli_errors.py for every command's mistakes."""
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vislib import load_model
from vislib.cli import main
from vislib.images import sample_images
from vislib.predict import classify

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def model():
    return load_model("efficientnet_lite0")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A cat (JPEG and PNG), coffee, and a text file pretending to be a JPEG."""
    folder = tmp_path_factory.mktemp("pictures")
    samples = sample_images()
    samples["chelsea (cat)"]().save(folder / "cat.jpg", quality=90)
    samples["chelsea (cat)"]().save(folder / "cat.png")
    samples["coffee"]().save(folder / "coffee.jpg", quality=90)
    (folder / "x.jpg").write_text("this is not a picture\n")
    (folder / "notes.txt").write_text("not an image, and not named like one\n")
    return {name: str(folder / name) for name in ["cat.jpg", "cat.png", "coffee.jpg", "x.jpg"]} | {"dir": str(folder)}


def run_json(capsys, *argv):
    status = main(["predict", "--json", *argv])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def is_one_sentence(text):
    text = text.strip()
    return "\n" not in text and text.endswith(".") and "Traceback" not in text


# ---------------------------------------------------------------- predict, in process

def test_cat_is_a_cat(files, capsys):
    status, lines, err = run_json(capsys, files["cat.jpg"])
    assert status == 0 and err == ""
    [line] = lines
    assert line["path"] == files["cat.jpg"]
    assert len(line["top"]) == 5
    assert line["top"][0]["index"] in CATS
    assert line["top"][0]["label"] in {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert set(line["top"][0]) == {"index", "label", "prob"}


def test_top_3_is_sorted_and_a_distribution(files, capsys):
    status, [line], _ = run_json(capsys, "--top", "3", files["coffee.jpg"])
    assert status == 0
    probs = [t["prob"] for t in line["top"]]
    assert len(probs) == 3
    assert probs == sorted(probs, reverse=True)
    assert all(0 <= p <= 1 for p in probs) and sum(probs) <= 1 + 1e-5


def test_a_text_file_is_one_error_line_and_status_1(files, capsys):
    status, lines, err = run_json(capsys, files["x.jpg"])
    assert status == 1 and err == ""
    assert lines == [{"path": files["x.jpg"], "error": lines[0]["error"]}]
    assert is_one_sentence(lines[0]["error"]) and "not an image" in lines[0]["error"]


def test_good_and_bad_files_keep_their_order(files, capsys):
    order = [files["cat.jpg"], files["x.jpg"], files["coffee.jpg"], files["x.jpg"], files["cat.png"]]
    status, lines, _ = run_json(capsys, "--batch-size", "2", *order)
    assert status == 1
    assert [line["path"] for line in lines] == order
    assert ["error" in line for line in lines] == [False, True, False, True, False]
    assert lines[0]["top"][0]["index"] in CATS and lines[4]["top"][0]["index"] in CATS
    assert lines[2]["top"][0]["index"] not in CATS


def test_a_folder_expands_to_its_images_sorted(files, capsys):
    status, lines, _ = run_json(capsys, files["dir"])
    names = [os.path.basename(line["path"]) for line in lines]
    assert names == ["cat.jpg", "cat.png", "coffee.jpg", "x.jpg"]  # notes.txt is not an image name
    assert status == 1  # x.jpg


def test_text_output_is_a_block_per_image(files, capsys):
    assert main(["predict", "--top", "2", files["cat.jpg"], files["x.jpg"]]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == files["cat.jpg"]
    prob, label, index = re.fullmatch(r"  (\d\.\d{3})  (.+) \((\d+)\)", out[1]).groups()
    assert 0 < float(prob) <= 1 and int(index) in CATS and re.fullmatch(r"  \d\.\d{3}  .+ \(\d+\)", out[2])
    assert len(out) == 5 and out[3] == files["x.jpg"] and out[4].startswith("  error: ")


@pytest.mark.parametrize("argv, words", [
    (["predict", "--model", "no_such_net", "IMG"], "is neither a network this app knows"),
    (["predict", "does/not/exist.jpg"], "no file or folder"),
    (["predict", "--top", "0", "IMG"], "--top"),
    (["predict", "--model", "IMG", "IMG"], "architecture"),  # an image is no checkpoint, and no arch given
    # A text file as a checkpoint: the loader's own sentence, or the CLI's for a loader that broke.
    (["predict", "--model", "TXT", "--arch", "resnet18", "IMG"], ("could not be loaded", "not a readable")),
    (["nonsense"], "invalid choice"),
])
def test_what_cannot_be_done_is_one_line_on_stderr_and_status_1(files, capsys, argv, words):
    status = main([{"IMG": files["cat.jpg"], "TXT": files["x.jpg"]}.get(a, a) for a in argv])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert err.startswith("error: ") and is_one_sentence(err)
    assert any(w in err for w in ([words] if isinstance(words, str) else words))


def test_models_lists_the_zoo(capsys):
    assert main(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert by_name["efficientnet_lite0"]["state"] == "ready"
    assert {"efficientnet_lite1", "resnet18", "vgg16"} <= set(by_name)
    assert all(r["state"] in {"ready", "download", "unavailable"} and r["detail"] for r in rows)
    assert main(["models"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:2] == ["efficientnet_lite0", "ready"]


# ---------------------------------------------------------------- a real process

def test_python_m_vislib_without_a_traceback(files, tmp_path):
    """The installed package (`pip install -e .`), from another folder: nothing added to the path."""
    run = subprocess.run([sys.executable, "-m", "vislib", "predict", "--json", files["cat.jpg"], files["x.jpg"]],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    cat, bad = (json.loads(line) for line in run.stdout.splitlines())
    assert cat["top"][0]["index"] in CATS and "error" in bad

    run = subprocess.run([sys.executable, "-m", "vislib", "predict", "--model", "no_such_net", files["cat.jpg"]],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- classify

def test_classify_keeps_order_and_errors_stay_with_their_image(model):
    samples = sample_images()
    pictures = [samples[n]() for n in ["chelsea (cat)", "coffee", "rocket", "astronaut", "motorcycle"]]
    encoded = []
    for im in pictures:
        buf = io.BytesIO()
        im.save(buf, "PNG")
        encoded.append(buf.getvalue())
    sources = [encoded[0], encoded[1], b"garbage", encoded[2], encoded[3], b"", encoded[4]]
    results = list(classify(model, iter(sources), top=3, batch_size=3))  # errors in the 1st and 2nd batch

    assert [s for s, _ in results] == sources
    assert isinstance(results[2][1], str) and isinstance(results[5][1], str)
    assert is_one_sentence(results[2][1]) and is_one_sentence(results[5][1])
    for (_, got), im in zip([r for r in results if not isinstance(r[1], str)], pictures):
        want = model.top_k(im, 3)
        assert [i for i, _, _ in got] == [i for i, _, _ in want]
        assert [p for _, _, p in got] == pytest.approx([p for _, _, p in want], abs=1e-4)
        assert got[0][1] == model.labels[got[0][0]]


def test_classify_edge_cases(model):
    assert list(classify(model, [])) == []
    assert [type(r) for _, r in classify(model, [b"nope", b"still not"], batch_size=1)] == [str, str]
    with pytest.raises(ValueError):
        next(classify(model, [b""], batch_size=0))


# ---------------------------------------------------------------- real photos, when ../shared is here

@pytest.mark.skipif(not (DATA / "imagenet-samples").is_dir(), reason="../shared/data is not on this machine")
def test_twenty_imagenet_samples(capsys):
    index = {wnid: i for i, wnid in enumerate((DATA / "imagenet-wnids.txt").read_text().split())}
    paths = sorted(str(p) for p in (DATA / "imagenet-samples").iterdir())[::50]  # 20 classes, spread out
    assert len(paths) == 20
    status, lines, _ = run_json(capsys, "--top", "1", *paths)
    assert status == 0 and [line["path"] for line in lines] == paths
    right = sum(line["top"][0]["index"] == index[Path(line["path"]).name.split("_")[0]] for line in lines)
    assert right >= 15, f"only {right} of 20 right"
