"""The atlas: its pass equals the patch search and brute force, a stopped build resumes to the same files."""
from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from vislib import activations, atlas
from vislib.data.patches import top_state

LAYERS = ["relu1", "conv2", "conv3"]


@pytest.fixture(scope="module")
def net(random_fashion):
    return random_fashion


@pytest.fixture(scope="module")
def pictures(noise_pictures):
    return noise_pictures(70, seed=0)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_the_pass_equals_the_patch_search_and_brute_force_statistics(net, pictures, tmp_path):
    built = atlas.build(net, LAYERS, pictures, tmp_path / "a", k=5, visualize=False, batch_size=4)
    assert built.complete and built.layers == LAYERS
    x = torch.stack([net.preprocess(pictures[i][0]) for i in range(len(pictures))])
    _, seen = activations.capture(net, x, LAYERS)
    for layer in LAYERS:
        state = top_state(net, layer, pictures, k=5, batch_size=4, per_picture=True)
        cells = state.map_size[0] * state.map_size[1]
        maps = seen[layer]
        for channel in (0, 7, state.channels - 1):
            want = [(int(p // cells), float(v)) for v, p in zip(state.values[channel], state.positions[channel])]
            assert built.examples(layer, channel) == want
            assert built.cells(layer, channel) == [divmod(int(p % cells), state.map_size[1])
                                                   for p in state.positions[channel]]
            unit, per_picture = built.unit(layer, channel), maps[:, channel].flatten(1)
            np.testing.assert_allclose(built.activations(layer, channel), per_picture.amax(1).numpy(), rtol=1e-6)
            np.testing.assert_allclose(unit["mean"], float(per_picture.mean(1).double().mean()), rtol=1e-5)
            np.testing.assert_allclose(unit["std"], float(per_picture.mean(1).double().std(unbiased=False)),
                                       rtol=1e-4, atol=1e-7)
            assert unit["peak"] == pytest.approx(float(per_picture.max()), rel=1e-6)
            assert unit["fired"] == pytest.approx(float((per_picture.amax(1) > 0).double().mean()))


def test_a_stopped_build_resumes_to_the_same_files(net, pictures, tmp_path):
    whole = tmp_path / "whole"
    atlas.build(net, LAYERS, pictures, whole, k=5, visualize=False, batch_size=4)
    resumed = tmp_path / "resumed"
    calls = []

    def stop_after_first_chunk(done, total, *rest, **info):
        calls.append(done)
        return False

    partial = atlas.build(net, LAYERS, pictures, resumed, k=5, visualize=False, batch_size=4,
                          progress=stop_after_first_chunk)
    assert calls == [32] and not partial.complete  # a chunk is 8 batches of 4
    with pytest.raises(atlas.AtlasError, match="has not finished"):
        partial.examples("conv2", 0)
    done = atlas.build(net, LAYERS, pictures, resumed, k=5, visualize=False, batch_size=4)
    assert done.complete
    assert _files(whole) == _files(resumed)
    match, mismatch, errors = filecmp.cmpfiles(whole, resumed, _files(whole), shallow=False)
    assert mismatch == [] and errors == []


def test_a_folder_of_another_atlas_is_refused_in_one_sentence(net, pictures, tmp_path):
    atlas.build(net, ["conv2"], pictures, tmp_path, k=3, visualize=False, batch_size=8)
    with pytest.raises(atlas.AtlasError, match=r"holds an atlas of another settings|holds an atlas of another"):
        atlas.build(net, ["conv2"], pictures, tmp_path, k=4, visualize=False, batch_size=8)
    with pytest.raises(atlas.AtlasError, match="holds no atlas"):
        atlas.open(tmp_path / "nothing")
    opened = atlas.open(tmp_path)
    with pytest.raises(atlas.AtlasError, match="no channel 64"):
        opened.examples("conv2", 64)
    with pytest.raises(atlas.AtlasError, match="no layer 'conv9'"):
        opened.examples("conv9", 0)


def test_the_ray_engine_on_a_local_cluster_equals_the_local_engine(net, pictures, tmp_path, monkeypatch):
    """A local Ray on loopback (as a laptop starts it) runs the passes in an actor pool and the feature
    visualisations as tasks: the atlas's files, the features and the patch state equal the local engine's."""
    if importlib.util.find_spec("ray") is None:  # not importorskip: vislib must be first to import Ray
        pytest.skip("the distributed extra (pip install vislib[distributed]) is not installed")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    atlas.build(net, ["conv2", "conv3"], pictures, local, k=5, visualize=False, batch_size=4)
    atlas.build(net, ["conv2", "conv3"], pictures, distributed, k=5, visualize=False, batch_size=4, engine="ray")
    assert _files(local) == _files(distributed)
    match, mismatch, errors = filecmp.cmpfiles(local, distributed, _files(local), shallow=False)
    assert mismatch == [] and errors == []
    import ray
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    local, distributed = tmp_path / "local-fv", tmp_path / "ray-fv"  # with examples and visualisations
    atlas.build(net, ["conv3"], pictures, local, k=4, steps=2, batch_size=8)
    atlas.build(net, ["conv3"], pictures, distributed, k=4, steps=2, batch_size=8, engine="ray")
    assert _files(local) == _files(distributed) and any(name.endswith(".png") for name in _files(local))
    match, mismatch, errors = filecmp.cmpfiles(local, distributed, _files(local), shallow=False)
    assert mismatch == [] and errors == []
    from vislib import features
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path / "cache-local"))
    want = features.extract(net, pictures, "conv3", batch_size=4)
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path / "cache-ray"))
    np.testing.assert_array_equal(features.extract(net, pictures, "conv3", batch_size=4, engine="ray"), want)
    for per_picture in (False, True):
        local = top_state(net, "conv2", pictures, k=6, batch_size=4, per_picture=per_picture)
        distributed = top_state(net, "conv2", pictures, k=6, batch_size=4, per_picture=per_picture, engine="ray")
        assert np.array_equal(local.values, distributed.values) and np.array_equal(local.positions,
                                                                                    distributed.positions)
        assert distributed.images_seen == len(pictures)


def test_a_visualised_atlas_stores_each_units_examples_and_pictures(net, pictures, tmp_path):
    """With visualize, the build stores every example's patch and guided view (the unit page then
    decodes no picture) and a feature visualisation per channel; they equal what is computed live."""
    from types import SimpleNamespace

    from vislib import units
    built = atlas.build(net, ["conv3"], pictures, tmp_path, k=4, steps=2, batch_size=8)
    assert built.complete and built.feature_visualization("conv3", 5).size == (112, 112)
    stored = units.from_atlas(net, built, "conv3", 5, pictures)
    listed = SimpleNamespace(examples=built.examples, cells=built.cells)  # no stored pictures: computed
    live = units.from_atlas(net, listed, "conv3", 5, pictures)
    assert [(e.index, e.activation, e.cell, e.box) for e in stored] == [(e.index, e.activation, e.cell, e.box)
                                                                          for e in live]
    for a, b in zip(stored, live):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
        assert np.array_equal(np.asarray(a.guided), np.asarray(b.guided))
