"""vislib.embedding: t-SNE quality against scikit-learn, determinism, neighbours, PCA, grid layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics.pairwise import cosine_distances

from vislib import embedding
from vislib.tsne import affinities, exact_repulsion, repulsion


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x[:600].astype(np.float32), y[:600]


@pytest.fixture(scope="module")
def digits_map(digits):
    return embedding.tsne(digits[0], seed=0, perplexity=30, device="cpu")


def test_tsne_keeps_neighbourhoods_as_well_as_scikit_learn(digits, digits_map):
    x, _ = digits
    ours = embedding.trustworthiness(x, digits_map, k=10)
    ref = embedding.trustworthiness(x, TSNE(perplexity=30, init="pca", random_state=0).fit_transform(x), k=10)
    assert digits_map.shape == (600, 2) and digits_map.dtype == np.float32
    assert ours >= ref - 0.01, (ours, ref)


def test_tsne_separates_the_digit_classes(digits, digits_map):
    """Most points' nearest map neighbour shows the same digit (about 97% for scikit-learn's map)."""
    _, y = digits
    d = ((digits_map[:, None] - digits_map[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (y[d.argmin(1)] == y).mean() > 0.9


def test_tsne_same_seed_same_map_other_seed_other_map(digits, digits_map):
    x = digits[0][:150]
    first = embedding.tsne(x, seed=3, perplexity=20, device="cpu")
    assert np.array_equal(first, embedding.tsne(x, seed=3, perplexity=20, device="cpu"))
    assert not np.allclose(first, embedding.tsne(x, seed=4, perplexity=20, device="cpu"))


def test_tsne_progress_reports_and_can_stop(digits):
    seen = []

    def progress(step, total, kl, embedding, phase):  # the protocol's keywords; no preview for a map
        seen.append((step, kl, embedding.shape))
        return step < 30

    out = embedding.tsne(digits[0][:200], progress=progress, device="cpu")
    assert [s for s, _, _ in seen] == [10, 20, 30] and seen[-1][2] == (200, 2) and out.shape == (200, 2)


def test_affinities_are_symmetric_perplexity_calibrated_and_sum_to_one(digits):
    x = torch.as_tensor(digits[0][:300])
    i, j, p = affinities(x - x.mean(0), perplexity=10)
    assert (i < j).all() and abs(float(p.sum()) * 2 - 1) < 1e-5
    dense = torch.zeros(300, 300, dtype=torch.float64)
    dense[i, j] = p.double()
    dense = dense + dense.T
    # Each conditional row p_j|i (recovered for one point from a fresh search) has perplexity 10.
    from vislib.tsne import _bandwidths, _knn
    d, _ = _knn(x - x.mean(0), 30)
    cond = _bandwidths(d, 10)
    entropy = -(cond * torch.log(cond.clamp_min(1e-300))).sum(1)
    assert torch.allclose(torch.exp(entropy), torch.full((300,), 10.0, dtype=torch.float64), rtol=1e-3)


@pytest.mark.parametrize("scale", [0.5, 5.0, 12.0])
def test_interpolated_repulsion_matches_the_exact_sum(scale):
    torch.manual_seed(0)
    y = torch.randn(1500, 2, dtype=torch.float64) * scale
    diff = y[:, None] - y[None]
    q = 1 / (1 + (diff ** 2).sum(-1))
    force = ((q * q)[..., None] * diff).sum(1)
    z = q.sum() - len(y)
    approx, approx_z = repulsion(y)
    assert float((approx - force).norm() / force.norm()) < 0.05
    assert abs(float(approx_z / z) - 1) < 0.01
    exact, exact_z = exact_repulsion(y)
    assert torch.allclose(exact, force) and torch.isclose(exact_z, z)


def test_nearest_equals_brute_force_cosine():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    d = cosine_distances(x)
    for i in (0, 57, 199):
        row = d[i].copy()
        row[i] = np.inf
        assert embedding.nearest(x, i, k=8).tolist() == np.argsort(row, kind="stable")[:8].tolist()
    q = rng.normal(size=16).astype(np.float32)
    expected = np.argsort(cosine_distances(q[None], x)[0], kind="stable")[:5]
    assert embedding.nearest(x, q, k=5).tolist() == expected.tolist()
    assert embedding.nearest(x, x[57], k=1).tolist() == [57]  # a vector is its own nearest; an index is left out
    assert 57 not in embedding.nearest(x, 57, k=199)
    assert np.allclose(embedding.distances(x, q), cosine_distances(q[None], x)[0], atol=1e-6)
    assert embedding.nearest(x, 3, k=4, metric="euclidean").tolist() == \
        np.argsort(np.where(np.arange(200) == 3, np.inf, np.linalg.norm(x - x[3], axis=1)))[:4].tolist()


def test_pca_equals_scikit_learn_up_to_sign_and_projects_new_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 10)) @ rng.normal(size=(10, 10))
    ours = embedding.pca(x)
    ref = PCA(2).fit_transform(x)
    for c in range(2):
        assert np.allclose(ours[:, c], ref[:, c], atol=1e-4) or np.allclose(ours[:, c], -ref[:, c], atol=1e-4)
    assert np.allclose(embedding.pca_project(x, x[:3]), ours[:3], atol=1e-4)


def test_place_puts_a_new_point_among_its_neighbours():
    points = np.array([[0, 0], [0, 1], [10, 10], [10, 11]], np.float32)
    features = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], np.float32)
    assert np.allclose(embedding.place(features, points, np.array([1, 0.05]), k=2), [0, 0.5])


def test_grid_layout_is_an_optimal_bijection_onto_cells():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(60, 2))
    cells = embedding.grid_layout(points, 8, 8)
    assert len(set(cells.tolist())) == 60 and cells.min() >= 0 and cells.max() < 64
    # Points already on a grid (shuffled, stretched) keep their own cells.
    r, c = np.divmod(np.arange(12), 4)
    order = rng.permutation(12)
    on_grid = np.stack([c * 3.0, r * 7.0], 1)[order]
    assert embedding.grid_layout(on_grid, 3, 4).tolist() == order.tolist()
    with pytest.raises(ValueError, match="do not fit"):
        embedding.grid_layout(points, 5, 5)


def test_bad_input_is_one_plain_sentence():
    with pytest.raises(ValueError, match="table of rows"):
        embedding.tsne(np.zeros(5))
    with pytest.raises(ValueError, match="at least 4"):
        embedding.tsne(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="perplexity must be positive"):
        embedding.tsne(np.zeros((10, 2)), perplexity=0)
    with pytest.raises(ValueError, match="NaN"):
        embedding.pca(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="Unknown metric"):
        embedding.nearest(np.ones((4, 2)), 0, metric="manhattan")


def test_cli_embed_writes_csv_and_png_maps(tmp_path, capsys):
    from vislib.cli import main
    x = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    np.save(tmp_path / "f.npy", x)
    assert main(["embed", str(tmp_path / "f.npy"), "--method", "pca", "--out", str(tmp_path / "map.csv")]) == 0
    rows = np.loadtxt(tmp_path / "map.csv", delimiter=",", skiprows=1)
    assert rows.shape == (50, 3) and np.allclose(np.abs(rows[:, 1:]), np.abs(embedding.pca(x)), atol=1e-4)
    assert main(["embed", str(tmp_path / "f.npy"), "--perplexity", "5", "--out", str(tmp_path / "map.png")]) == 0
    from PIL import Image
    assert Image.open(tmp_path / "map.png").size[0] > 100
    capsys.readouterr()
    assert main(["embed", str(tmp_path / "missing.npy")]) == 1
    assert main(["embed", str(tmp_path / "f.npy"), "--grid", "--out", str(tmp_path / "g.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: There is no file {tmp_path / 'missing.npy'}.",
                   "error: --grid needs a collection of pictures and an --out file ending in .png."]


# ---------------------------------------------------------------- the two pages (built-in samples: 9 pictures)

@pytest.fixture(scope="module")
def samples_features(lite0, tmp_path_factory):
    import os
    from vislib.datasets import open_collection
    from vislib.features import extract
    os.environ["VISLIB_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # for the whole module, pages included
    return extract(lite0, open_collection("samples"))


@pytest.fixture
def app(samples_features):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _strips(at, k=8):
    """The captions of each row of k neighbour tiles, as picture indices."""
    return [[int(c.split(":")[0].split()[-1]) for c in im.captions] for im in at.get("image") if len(im.captions) == k]


def test_neighbours_page_shows_pixel_and_feature_neighbours(app, lite0, cat, samples_features):
    from vislib.datasets import open_collection
    from vislib.features import layer_output, pixels, thumbnail
    tiny = pixels(open_collection("samples"))
    app.switch_page("app_pages/neighbours.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert [s.value for s in app.subheader] == ["In pixel space", "In feature space"]
    query = layer_output(lite0, lite0.preprocess(cat)[None], None, lambda t: t.flatten(1))[0].cpu().numpy()
    pixel, feature = _strips(app)
    assert feature == embedding.nearest(samples_features, query, 8).tolist()
    cat_pixels = np.asarray(thumbnail(cat, 32), np.float32).reshape(-1) / 255
    assert pixel == embedding.nearest(tiny, cat_pixels, 8, metric="euclidean").tolist()
    app.radio(key="nn-source").set_value("A picture of the collection").run()
    assert not app.exception
    pixel, feature = _strips(app)
    assert feature == embedding.nearest(samples_features, 0, 8).tolist()
    assert pixel == embedding.nearest(tiny, 0, 8, metric="euclidean").tolist() and 0 not in pixel


def _map(at):
    """The map's points [N, 2] and the names of its traces, read back from the plotly figure."""
    import base64
    import json
    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]

    def values(v):  # plotly sends numpy arrays as {"dtype", "bdata": base64}
        return np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"]) if isinstance(v, dict) else np.asarray(v)
    return np.c_[values(traces[0]["x"]), values(traces[0]["y"])], [t.get("name") for t in traces]


def test_feature_map_page_draws_pca_and_tsne_maps_and_a_grid(app, samples_features):
    app.switch_page("app_pages/feature_map.py").run()
    assert not app.exception, [e.value for e in app.exception]
    points, names = _map(app)
    assert names == ["(no label)", "your picture"]
    assert np.allclose(points, embedding.tsne(samples_features, seed=0, perplexity=2), atol=1e-5)
    app.radio(key="map-method").set_value("PCA").run()
    points, _ = _map(app)
    assert np.allclose(np.abs(points), np.abs(embedding.pca(samples_features)), atol=1e-4)
    app.radio(key="map-method").set_value("t-SNE").run()
    app.checkbox(key="map-grid").check().run()
    assert not app.exception
    assert any(c.startswith("9 pictures, each in the grid cell") for im in app.get("image") for c in im.captions)


def test_row_sums_in_fixed_point_equal_index_add():
    """The GPU's fixed-point sums (exact in any order) add up what index_add_ does, empty rows included."""
    from vislib.tsne import RowSums
    g = torch.Generator().manual_seed(0)
    index, values = torch.randint(0, 50, (1000,), generator=g), torch.randn(1000, 3, generator=g, dtype=torch.float64)
    fixed = RowSums(index, 60, fixed_point=True)
    assert fixed.fixed_point and not RowSums(index, 60).fixed_point  # the CPU keeps index_add_
    expected = torch.zeros(60, 3, dtype=torch.float64).index_add_(0, index, values)
    torch.testing.assert_close(fixed(values), expected, rtol=0, atol=1e-9)
    assert (fixed(values)[50:] == 0).all() and fixed(values).dtype == torch.float64
