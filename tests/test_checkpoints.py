"""A person's weight files are read without ever running code from them."""
from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

from vislib import ModelError, load_model
from vislib.checkpoints import load_state_dict, read_labels

REFUSED = ("The checkpoint contains Python objects other than tensors, so it was refused (it could run code); "
           "save model.state_dict() or a .safetensors file instead.")
UNREADABLE = ("The file is not a readable PyTorch checkpoint; save it with torch.save(model.state_dict(), path) "
              "or as .safetensors.")


def one_sentence(message: str) -> bool:
    return message.endswith(".") and "\n" not in message and not re.search(r"[.!?]\s+[A-Z]", message)


class Plant:
    """Unpickling this creates `marker`: if the file exists afterwards, the pickle ran code."""
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class Run:
    """The classic attack: exec a program while unpickling."""
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import builtins
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _evil_files(marker: Path) -> dict[str, bytes]:
    state = {"fc.weight": torch.zeros(2, 2), "fc.bias": Plant(marker)}
    files = {}
    for name, payload in [("torch.save", state), ("exec", {"fc.weight": Run(marker)})]:
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        files[name] = buffer.getvalue()
    files["pickle"] = pickle.dumps(state, protocol=2)
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=False)
    files["legacy torch.save"] = buffer.getvalue()
    return files


def test_the_marker_proves_an_unpickle_runs_code(tmp_path):
    """The attack is real: a plain unpickle does create the marker."""
    marker = tmp_path / "ran"
    pickle.loads(_evil_files(marker)["pickle"])
    assert marker.exists()


@pytest.mark.parametrize("kind", ["torch.save", "exec", "pickle", "legacy torch.save"])
def test_malicious_pickles_are_refused_and_never_run(tmp_path, kind):
    marker = tmp_path / "ran"
    data = _evil_files(marker)[kind]
    path = tmp_path / "weights.pt"
    path.write_bytes(data)
    upload = io.BytesIO(data)
    upload.name = "weights.pth"
    for source in (path, str(path), data, upload):
        with pytest.raises(ModelError) as err:
            load_state_dict(source)
        assert str(err.value) == REFUSED
        assert not marker.exists()
    with pytest.raises(ModelError, match="so it was refused"):
        load_model(str(path), arch="resnet18")
    assert not marker.exists()


def test_a_pickled_module_is_refused(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()), path)
    with pytest.raises(ModelError) as err:
        load_state_dict(path)
    assert str(err.value) == REFUSED and one_sentence(REFUSED)


@pytest.mark.parametrize("data", [
    b"this is not a checkpoint at all" * 10,
    bytes(range(256)) * 4,
    b"PK\x03\x04 a broken zip",
    b"\x80\x02",
    b"",
], ids=["text", "bytes", "zip", "truncated", "empty"])
def test_garbage_is_one_sentence(tmp_path, data):
    path = tmp_path / "garbage.pt"
    path.write_bytes(data)
    for source in (path, data):
        with pytest.raises(ModelError) as err:
            load_state_dict(source)
        assert str(err.value) in (UNREADABLE, REFUSED)
        assert one_sentence(str(err.value))


def test_broken_safetensors(tmp_path):
    data = save_safetensors({"w": torch.ones(2, 3)})
    broken = data[:-5]
    path = tmp_path / "w.safetensors"
    path.write_bytes(broken)
    for source in (path, broken):
        with pytest.raises(ModelError, match=r"^The file is not a readable \.safetensors checkpoint"):
            load_state_dict(source)


def test_tensors_in_every_container():
    state = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.randn(4),
             "bn.num_batches_tracked": torch.tensor(7)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    upload = io.BytesIO(buffer.getvalue())
    upload.name = "mine.pt"
    safetensors = save_safetensors(state)
    named = io.BytesIO(safetensors)
    named.name = "mine.safetensors"
    for source in (buffer.getvalue(), upload, safetensors, named):
        got = load_state_dict(source)
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
    wrapped = io.BytesIO()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 12, "lr": 0.1}, wrapped)
    got = load_state_dict(wrapped.getvalue())
    assert list(got) == list(state) and all(torch.equal(got[k], state[k]) for k in state)


def test_not_a_state_dict():
    for payload in ([torch.zeros(2)], {"weights": torch.zeros(2), "epoch": 3}, torch.zeros(3)):
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        with pytest.raises(ModelError) as err:
            load_state_dict(buffer.getvalue())
        assert str(err.value) == "The checkpoint is not a state_dict (a mapping of names to tensors)."


def test_size_limit(monkeypatch, tmp_path):
    from vislib import checkpoints
    monkeypatch.setattr(checkpoints, "MAX_CHECKPOINT_BYTES", 1000)
    big = bytes(1001)
    path = tmp_path / "big.pt"
    path.write_bytes(big)
    for source in (path, big, io.BytesIO(big)):
        with pytest.raises(ModelError, match="larger than"):
            load_state_dict(source)


def test_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(ModelError) as err:
        read_labels(tmp_path / "labels.txt")
    assert str(tmp_path / "labels.txt") in str(err.value) and one_sentence(str(err.value))
    with pytest.raises(ModelError, match="could not be read"):
        load_state_dict(str(tmp_path / "nothing.pt"))


def test_labels(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffT-shirt/top\r\n  Trouser \n\nPullover\nCafé\n".encode("utf-8"))
    expected = ["T-shirt/top", "Trouser", "Pullover", "Café"]
    assert read_labels(path) == expected
    assert read_labels(str(path)) == expected
    assert read_labels(path.read_bytes()) == expected
    assert read_labels(io.BytesIO(path.read_bytes())) == expected
    assert read_labels(("a", 2)) == ["a", "2"]


def test_labels_that_are_not_utf8(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("Café\nNaïve\n".encode("latin-1"))
    for source in (path, path.read_bytes()):
        with pytest.raises(ModelError) as err:
            read_labels(source)
        assert str(err.value) == "The labels file is not UTF-8 text with one class name a line."
