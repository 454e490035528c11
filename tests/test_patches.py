"""Maximally activating patches against brute force; shards merge into the single pass exactly."""
import numpy as np
import pytest
import torch

import vislib
from vislib import activations, datasets, patches
from vislib.models import family
from vislib.cli import main
from vislib.patches import TopState, cell_top, top_state


@pytest.fixture(scope="module")
def net():
    """fashion_cnn's architecture with random weights (geometry and arithmetic do not need training)."""
    fam = family("fashion_cnn")
    torch.manual_seed(0)
    return fam.assemble(fam.build(10), datasets.FASHION_CLASSES, "cpu")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """150 Fashion-MNIST pictures as a folder of PNGs (the Debian files when present, else random ones)."""
    root = tmp_path_factory.mktemp("fashion")
    try:
        images, labels, _ = datasets.fashion_mnist("test")
    except datasets.CollectionError:
        images = np.random.default_rng(0).integers(0, 256, (150, 28, 28), dtype=np.uint8)
        labels = np.arange(150) % 10
    from PIL import Image
    for i in range(150):
        (root / datasets.FASHION_CLASSES[labels[i]].replace("/", "-")).mkdir(exist_ok=True)
        Image.fromarray(images[i]).save(root / datasets.FASHION_CLASSES[labels[i]].replace("/", "-") / f"{i:03d}.png")
    return datasets.open_collection(root)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path / "cache"))


def _brute(net, collection, layer, k):
    """Every cell of every picture, ordered by (value descending, position ascending)."""
    x = torch.stack([net.preprocess(collection[i][0]) for i in range(len(collection))])
    _, seen = activations.capture(net, x, [layer])
    maps = seen[layer]
    n, c, h, w = maps.shape
    values = maps.permute(1, 0, 2, 3).reshape(c, -1).numpy()
    positions = np.arange(n * h * w)
    order = np.stack([np.lexsort((positions, -row)) for row in values])[:, :k]
    return maps, np.take_along_axis(values, order, 1), order


@pytest.mark.parametrize("layer", ["relu1", "conv2", "pool2", "conv3"])
def test_top_patches_are_the_true_maxima_with_their_receptive_fields(net, pictures, layer):
    maps, values, positions = _brute(net, pictures, layer, 6)
    state = top_state(net, layer, pictures, k=6, batch_size=32)
    np.testing.assert_allclose(state.values, values, rtol=1e-5, atol=1e-6)
    assert np.array_equal(state.positions, positions)  # ReLU zeros tie: broken by position, like the reference
    info = net.layer(layer)
    channel = int(state.values[:, 0].argmax())
    found = patches.top_patches(net, layer, channel, pictures, k=6)
    assert [p.activation for p in found] == sorted((p.activation for p in found), reverse=True)
    for p in found:
        row, col = p.cell
        assert p.activation == pytest.approx(float(maps[p.index, channel, row, col]), abs=1e-6)
        assert p.box == info.box(row, col, net.input_size)
        x0, y0, x1, y1 = p.box
        assert p.image.size == (x1 - x0, y1 - y0)
        seen = net.to_image(net.preprocess(pictures[p.index][0]))
        assert np.array_equal(np.asarray(p.image), np.asarray(seen.crop(p.box)))


def _brute_pictures(maps: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each picture's strongest cell (the first on a tie), then the top k pictures by (value, index)."""
    n, c, h, w = maps.shape
    flat = maps.reshape(n, c, h * w).numpy()
    cells = flat.argmax(2)                               # numpy's argmax: the first maximal cell
    best = np.take_along_axis(flat, cells[..., None], 2)[..., 0].T          # [C, N]
    order = np.stack([np.lexsort((np.arange(n), -row)) for row in best])[:, :k]
    return np.take_along_axis(best, order, 1), order * h * w + np.take_along_axis(cells.T, order, 1)


@pytest.mark.parametrize("layer", ["relu1", "conv3"])
@pytest.mark.parametrize("batch", [7, 64])
def test_one_per_picture_equals_brute_force(net, pictures, layer, batch):
    maps, _, _ = _brute(net, pictures, layer, 1)
    values, positions = _brute_pictures(maps, 8)
    state = top_state(net, layer, pictures, k=8, batch_size=batch, per_picture=True)
    np.testing.assert_allclose(state.values, values, rtol=1e-5, atol=1e-6)
    assert np.array_equal(state.positions, positions)
    cells = maps.shape[2] * maps.shape[3]
    for channel in range(state.channels):  # k different pictures in every channel
        assert len(set(state.positions[channel] // cells)) == 8
    found = patches.top_patches(net, layer, 3, pictures, k=8, per_picture=True)
    assert [p.index for p in found] == list(state.positions[3] // cells)


def test_one_per_picture_merges_like_the_cells(net, pictures):
    whole = top_state(net, "conv2", pictures, k=5, per_picture=True)
    parts = [top_state(net, "conv2", pictures, k=5, indices=range(a, b), per_picture=True)
             for a, b in ((0, 40), (40, 41), (41, 150))]
    merged = parts[2].merge(parts[0]).merge(parts[1])
    assert np.array_equal(merged.positions, whole.positions)
    np.testing.assert_allclose(merged.values, whole.values, rtol=1e-6)  # other batches: last-bit differences
    with pytest.raises(ValueError, match="do not belong together"):
        whole.merge(top_state(net, "conv2", pictures, k=5, indices=range(3)))  # cells, not pictures


def test_shards_merge_into_the_single_pass_in_any_order(net, pictures, tmp_path):
    whole = top_state(net, "conv2", pictures, k=5, batch_size=64)
    a, b, c = (top_state(net, "conv2", pictures, 5, range(lo, hi), batch_size=16) for lo, hi in
               ((0, 50), (50, 100), (100, 150)))
    for merged in (a.merge(b).merge(c), c.merge(a.merge(b)), b.merge(c).merge(a)):
        assert np.array_equal(merged.values, whole.values) and np.array_equal(merged.positions, whole.positions)
        assert merged.images_seen == len(pictures)
    a.save(tmp_path / "a.npz")
    back = TopState.load(tmp_path / "a.npz")
    assert np.array_equal(back.values, a.values) and back.layer == "conv2" and back.shards == a.shards
    other = top_state(net, "conv3", pictures, 5, range(10))
    with pytest.raises(ValueError, match="do not belong together"):
        a.merge(other)


def test_batch_top_settles_ties_by_position():
    maps = torch.randint(0, 3, (4, 5, 3, 3)).float()  # many ties
    values, positions = cell_top(maps, torch.tensor([10, 11, 12, 13]), k=7)
    flat = maps.permute(1, 0, 2, 3).reshape(5, -1).numpy()
    for ch in range(5):
        order = np.lexsort((np.arange(36), -flat[ch]))[:7]
        assert positions[ch].tolist() == (order + 10 * 9).tolist()
        assert values[ch].tolist() == flat[ch][order].tolist()


def test_a_collection_smaller_than_k_leaves_empty_slots(net, pictures):
    state = top_state(net, "conv3", pictures.subset([0]), k=60)  # 49 cells in one picture
    assert np.isinf(state.values[:, 49:]).all()
    assert len(patches.patches(state, net, pictures.subset([0]), 0)) == 49


def test_unknown_channel_is_one_sentence(net, pictures):
    state = top_state(net, "conv3", pictures.subset([0, 1]), k=2)
    with pytest.raises(ValueError, match="channels 0 to 127"):
        patches.patches(state, net, pictures, 128)


def test_command_line_saves_and_renders(net, pictures, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("vislib.models.load_model", lambda name, *a, **kw: net)
    src = str(pictures._items[0]).rsplit("/", 2)[0]
    assert main(["patches", "--model", "fashion_cnn", "--layer", "conv2", "--collection", src, "--k", "4",
                 "--out", str(tmp_path / "m.npz")]) == 0
    saved, whole = TopState.load(tmp_path / "m.npz"), top_state(net, "conv2", pictures, k=4)
    assert np.array_equal(saved.positions, whole.positions)
    assert main(["patches", "--model", "fashion_cnn", "--state", str(tmp_path / "m.npz"), "--collection", src,
                 "--channel", "3", "--png", str(tmp_path / "png")]) == 0
    assert len(list((tmp_path / "png").glob("conv2-ch3-*.png"))) == 4 and (tmp_path / "png" / "conv2-ch3.png").exists()
    assert main(["patches", "--model", "fashion_cnn", "--layer", "nope", "--collection", src, "--out", "x.npz"]) == 1
    assert "has no layer named 'nope'" in capsys.readouterr().err


def test_the_page_finds_patches_shows_them_in_context_and_browses(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.run()
    at.switch_page("app_pages/patches.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Maximally activating patches"
    assert any("9 pictures" in c.value for c in at.caption)
    box = at.selectbox(key="patch-layer-efficientnet_lite0")
    box.select_index(next(i for i, o in enumerate(box.options) if o.startswith("blocks.0.0 ("))).run()
    [button] = [b for b in at.button if b.label == "Find the patches"]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    model, collection = vislib.load_model(), datasets.open_collection("samples")
    state = patches.saved_state(model, "blocks.0.0", collection, 9, per_picture=True)  # the page's default
    assert state is not None and state.images_seen == 9
    assert len(set(state.positions[0] // (state.map_size[0] * state.map_size[1]))) == 9  # nine pictures
    text = " ".join(m.value for m in at.markdown)
    assert "Activations: " + ", ".join(f"{v:.3f}" for v in state.values[0]) in text
    best = patches.patches(state, model, collection, 0)[0]
    captions = [c for image in at.get("image") for c in image.captions]
    assert any(f"activation {best.activation:.3f} at cell {best.cell}, box {best.box}" in c for c in captions)
    assert {"Download the patches", "Download the picture with its box"} <= {b.proto.label for b in at.get("download_button")}
    at.radio(key="patch-mode").set_value("Browse channels").run()
    assert not at.exception
    captions = [c for image in at.get("image") for c in image.captions if c.startswith("channel ")]
    assert len(captions) == 12 and captions[0].startswith(f"channel {int(state.values[:, 0].argmax())}:")
