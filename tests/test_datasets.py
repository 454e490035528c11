"""Collections: folders and zips with and without labels, damaged files, zip attacks, Fashion-MNIST."""
import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislib import datasets
from vislib.datasets import CollectionError, open_collection
from vislib.images import sample_images


def _png(colour=(200, 30, 30), size=(20, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def labelled(tmp_path) -> Path:
    root = tmp_path / "pets"
    for rel in ["cat/a.png", "dog/b.png", "dog/c.png"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_png())
    (root / "dog" / "broken.jpg").write_bytes(b"this is not a picture")
    (root / "dog" / "notes.txt").write_text("not a picture and not counted")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.png").write_bytes(_png())
    return root


def _zip(entries: dict[str, bytes], **kwargs) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", **kwargs) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_class_subfolders_give_labels_and_a_broken_file_is_skipped_and_counted(labelled):
    c = open_collection(labelled)
    assert (len(c), c.classes, c.skipped) == (3, ["cat", "dog"], 1)
    assert c.labels == [0, 1, 1] and c.label_name(2) == "dog"
    image, label = c[1]
    assert image.mode == "RGB" and image.size == (20, 16) and label == 1


def test_a_flat_folder_has_no_labels(tmp_path):
    for name in "xyz":
        (tmp_path / f"{name}.png").write_bytes(_png())
    c = open_collection(tmp_path)
    assert (len(c), c.classes, c.labels) == (3, [], [None, None, None])


def test_the_key_follows_the_content(labelled):
    before = open_collection(labelled).key
    assert open_collection(labelled).key == before
    (labelled / "cat" / "a.png").write_bytes(_png((0, 0, 255), (30, 30)))
    assert open_collection(labelled).key != before


def test_a_file_that_fails_to_decode_later_becomes_grey_and_is_counted(tmp_path):
    (tmp_path / "good.png").write_bytes(_png())
    (tmp_path / "cut.png").write_bytes(_png(size=(300, 300))[:200])  # the header parses, the pixels do not
    c = open_collection(tmp_path)
    assert len(c) == 2 and c.skipped == 0
    image, _ = c[0]  # sorted by name: cut.png first
    assert c.skipped == 1 and c.failed == {0} and image.getpixel((0, 0)) == (128, 128, 128)


def test_missing_and_empty_sources_are_one_sentence(tmp_path):
    with pytest.raises(CollectionError, match="no folder or zip file named"):
        open_collection(tmp_path / "nowhere")
    with pytest.raises(CollectionError, match="contains no pictures"):
        open_collection(tmp_path)


def test_a_zip_of_a_folder_reads_from_bytes_path_and_file(tmp_path):
    data = _zip({"pets/cat/a.png": _png(), "pets/dog/b.png": _png(), "pets/dog/bad.png": b"junk",
                 "__MACOSX/pets/._a.png": b"resource fork"})
    (tmp_path / "pets.zip").write_bytes(data)
    for source in (data, tmp_path / "pets.zip", io.BytesIO(data)):
        c = open_collection(source)
        assert (len(c), c.classes, c.labels, c.skipped) == (2, ["cat", "dog"], [0, 1], 1)
        assert c[0][0].size == (20, 16)
    assert open_collection(data).key == open_collection(tmp_path / "pets.zip").key
    assert open_collection(_zip({"a.png": _png(), "b.png": _png()})).classes == []


@pytest.mark.parametrize("name", ["../evil.txt", "pets/../../evil.png", "/etc/evil.png", "C:/evil.png"])
def test_a_zip_with_a_path_escape_is_refused(name):
    with pytest.raises(CollectionError, match="path outside its folder"):
        open_collection(_zip({"ok.png": _png(), name: b"x"}))


def test_a_zip_with_a_symlink_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("ok.png", _png())
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    with pytest.raises(CollectionError, match="link"):
        open_collection(buffer.getvalue())


def test_a_zip_bomb_is_refused_by_its_ratio():
    bomb = _zip({"ok.png": _png(), "bomb.bmp": bytes(30 * 2**20)}, compression=zipfile.ZIP_DEFLATED)
    assert len(bomb) < 2**20
    with pytest.raises(CollectionError, match="zip bomb"):
        open_collection(bomb)


def test_a_zip_declaring_a_huge_size_is_refused(monkeypatch):
    monkeypatch.setattr(datasets, "MAX_UNZIPPED_BYTES", 10_000)
    with pytest.raises(CollectionError, match="unpack to more than"):
        open_collection(_zip({"a.png": _png(size=(100, 100)), "b.bmp": bytes(20_000)}))


def test_reading_a_member_stops_at_the_cap(monkeypatch):
    big = _png(size=(400, 400))
    monkeypatch.setattr(datasets, "MAX_MEMBER_BYTES", len(big) - 1)
    c = open_collection(_zip({"a.png": _png(), "big.png": big}))
    assert len(c) == 1 and c.skipped == 1  # refused on its declared size, never read


def test_too_many_files_are_refused(monkeypatch):
    monkeypatch.setattr(datasets, "MAX_FILES", 5)
    with pytest.raises(CollectionError, match="more than the 5 limit"):
        open_collection(_zip({f"{i}.png": _png() for i in range(6)}))


def test_not_a_zip_is_one_sentence(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip at all")
    with pytest.raises(CollectionError, match="not a zip file that can be read"):
        open_collection(tmp_path / "x.zip")


def test_samples_are_the_bundled_pictures():
    c = open_collection("samples")
    assert len(c) == len(sample_images()) and c.classes == [] and c[0][0].mode == "RGB"


def test_subset_keeps_order_and_gets_its_own_key(labelled):
    c = open_collection(labelled)
    s = c.subset([2, 0])
    assert s.labels == [1, 0] and s.key != c.key and s.key != c.subset([0, 2]).key


@pytest.mark.skipif(not (datasets.DEBIAN_FASHION / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_has_ten_thousand_labelled_test_pictures():
    c = open_collection("fashion-mnist")
    assert len(c) == 10_000 and c.classes[0] == "T-shirt/top" and c.classes[9] == "Ankle boot"
    assert "Debian" in c.source_note
    image, label = c[0]
    assert image.size == (28, 28) and image.mode == "RGB" and label == 9  # the first test picture is a boot
    assert np.bincount(c.labels).tolist() == [1000] * 10


# ---------------------------------------------------------------- torchvision's downloads

def _refuse(*args, **kwargs):
    import urllib.error
    raise urllib.error.URLError("no route to host")


@pytest.mark.parametrize("name, module, title, host", [
    ("cifar-10", "cifar", "CIFAR-10", "www.cs.toronto.edu"),
    ("imagenette", "imagenette", "Imagenette", "s3.amazonaws.com")])
def test_a_download_that_cannot_happen_is_one_sentence(name, module, title, host, tmp_path, monkeypatch):
    import importlib
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(importlib.import_module(f"torchvision.datasets.{module}"), "download_and_extract_archive",
                        _refuse)
    with pytest.raises(CollectionError) as err:
        open_collection(name)
    assert str(err.value) == (f"{title} is not on this machine and could not be downloaded from {host}; connect "
                              f"to the internet once and it is kept in {tmp_path / 'torchvision'}.")


def test_cifar10_reads_torchvision_s_files_as_pictures_with_labels(tmp_path, monkeypatch):
    import pickle
    import torchvision.datasets.cifar as cifar
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)  # our tiny files have other MD5s
    monkeypatch.setattr(cifar, "download_and_extract_archive", _refuse)  # and nothing is downloaded
    folder = tmp_path / "torchvision" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 3 * 32 * 32), dtype=np.uint8)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": pixels, "labels": [2, 0, 9]}))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    collection = open_collection("cifar-10")
    assert len(collection) == 3 and collection.classes == names and collection.labels == [2, 0, 9]
    picture, label = collection[1]
    assert label == 0 and picture.size == (32, 32) and picture.mode == "RGB"
    assert np.array_equal(np.asarray(picture), pixels[1].reshape(3, 32, 32).transpose(1, 2, 0))
    assert collection.key.startswith("cifar10-test-")


def test_imagenette_reads_the_extracted_folder_with_its_class_names(tmp_path, monkeypatch):
    import torchvision.datasets.imagenette as imagenette
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(imagenette, "download_and_extract_archive", _refuse)  # already extracted: no download
    root = tmp_path / "torchvision" / "imagenette2-160" / "val"
    for rel, colour in [("n01440764/a.JPEG", (200, 0, 0)), ("n02102040/b.JPEG", (0, 200, 0)),
                        ("n02102040/c.JPEG", (0, 0, 200))]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), colour).save(root / rel, format="JPEG")
    collection = open_collection("imagenette")
    assert collection.classes == ["tench", "English springer"] and collection.labels == [0, 1, 1]
    picture, label = collection[2]
    assert label == 1 and picture.size == (40, 30) and np.asarray(picture)[15, 20, 2] > 150
