"""A unit's examples: one per picture, equal to the patch search; guided backprop at the cell equals Captum's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import NeuronGradient, NeuronGuidedBackprop

from vislib import units
from vislib.data.collections import open_collection
from vislib.data.patches import top_state


@pytest.fixture(scope="module")
def net(random_fashion):
    return random_fashion


@pytest.fixture(scope="module")
def pictures(noise_pictures):
    return noise_pictures(30, seed=1)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path))


@pytest.mark.parametrize("guided", [True, False])
def test_unit_gradients_equal_captums_neuron_methods(net, pictures, guided):
    x = torch.stack([net.preprocess(pictures[i][0]) for i in range(3)])
    cells = [(1, 2), (5, 5), (13, 0)]
    ours = units.unit_gradients(net, x, "conv2", 7, cells, guided=guided)
    method = NeuronGuidedBackprop if guided else NeuronGradient
    with net.running() as module:
        for i, (r, c) in enumerate(cells):
            want = method(module, module.conv2).attribute(x[i:i + 1], neuron_selector=(7, r, c))
            torch.testing.assert_close(ours[i:i + 1], want, rtol=1e-5, atol=1e-7)


def test_examples_are_the_per_picture_top_k_with_their_guided_view(net, pictures):
    found = units.examples(net, "conv3", 4, pictures, k=5)
    state = top_state(net, "conv3", pictures, k=5, per_picture=True)
    cells = state.map_size[0] * state.map_size[1]
    assert [e.index for e in found] == [int(p // cells) for p in state.positions[4]]
    assert len({e.index for e in found}) == 5
    np.testing.assert_allclose([e.activation for e in found], state.values[4], rtol=1e-6)
    for e in found:
        assert e.guided.size == e.image.size  # the guided view covers exactly the patch
    plain = units.examples(net, "conv3", 4, pictures, k=5, guided=False)
    assert [e.index for e in plain] == [e.index for e in found] and all(e.guided is None for e in plain)


def test_class_effects_equal_a_network_whose_channel_is_cut(net, pictures):
    """Silencing channel 9 of conv3 by a hook equals a copy of the network whose BatchNorm writes 0 there."""
    import copy

    effects = units.class_effects(net, "conv3", 9, pictures, batch_size=7)
    with net.running():
        cut = copy.deepcopy(net.net)
    with torch.no_grad():
        bn = cut.conv3[1]
        bn.weight[9] = 0
        bn.bias[9] = 0  # ReLU(0) = 0: the block's output channel 9 is zero everywhere
    x = torch.stack([net.preprocess(pictures[i][0]) for i in range(len(pictures))])
    with torch.inference_mode(), net.running() as plain:
        want = (plain(x) - cut(x)).double().mean(0).numpy()
    np.testing.assert_allclose(effects, want, rtol=1e-5, atol=1e-6)
    assert effects.shape == (10,) and np.abs(effects).max() > 0
    with pytest.raises(ValueError, match="no channel 128"):
        units.class_effects(net, "conv3", 128, pictures)


def _activation(model, image, layer, channel):
    from vislib import activations
    x = model.preprocess(image)[None]
    _, seen = activations.capture(model, x, [layer])
    return float(seen[layer][0, channel].mean())


def test_a_batch_of_channels_equals_each_channel_alone(net):
    together = units.feature_visualizations(net, "conv2", [3, 8, 20], steps=6, size=56)
    alone = units.feature_visualizations(net, "conv2", [8], steps=6, size=56)
    assert [im.size for im in together] == [(56, 56)] * 3
    difference = np.abs(np.asarray(together[1], float) - np.asarray(alone[0], float))
    assert difference.max() <= 1  # the same start and steps; at most a rounding step apart


def test_the_classroom_network_is_rendered_large_and_its_picture_excites_the_unit():
    import vislib
    model = vislib.load_model("fashion_cnn")
    assert units.canvas_size(model) == 112
    samples = open_collection("samples")
    best_sample = max(_activation(model, samples[i][0], "conv3", 17) for i in range(len(samples)))
    [up] = units.feature_visualization(model, "conv3", 17, steps=48)
    [down] = units.feature_visualization(model, "conv3", 17, steps=48, negative=True)
    assert up.size == (112, 112)
    assert _activation(model, up, "conv3", 17) > best_sample > _activation(model, down, "conv3", 17)


def test_the_unit_page_follows_its_link_and_shows_examples_and_the_histogram(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path))
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.query_params.update({"model": "fashion_cnn", "layer": "conv3", "channel": "5"})
    at.run()
    at.switch_page("app_pages/unit.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "What one unit detects"
    assert at.selectbox(key="model_name").value == "fashion_cnn"
    captions = [c for image in at.get("image") for c in image.captions]
    assert sum(c.startswith("#") and c.endswith("guided backprop") for c in captions) == 9
    assert any("Fires (above zero somewhere)" in c.value for c in at.caption)
    assert {k: str(v).strip("[]'") for k, v in at.query_params.items()} == {  # the page's own address
        "model": "fashion_cnn", "layer": "conv3", "channel": "5"}
    [run] = [b for b in at.button if b.label == "Silence this unit"]
    run.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(chart for chart in at.get("plotly_chart"))


# ---------------------------------------------------------------- diversity

def test_each_pictures_similarity_pushes_exactly_as_the_batchs_similarity():
    from vislib.units import visualize
    torch.manual_seed(0)
    t = torch.rand(4, 6, 5, 5, requires_grad=True)
    whole, = torch.autograd.grad(visualize._gram_similarity(t), t)
    each = visualize._gram_similarity_each(t)
    assert each.shape == (4,)
    summed, = torch.autograd.grad(each.sum(), t, retain_graph=True)
    torch.testing.assert_close(summed, whole)
    one, = torch.autograd.grad(each[2], t)
    assert float(one[2].abs().sum()) > 0 and float(one[[0, 1, 3]].abs().sum()) == 0  # picture 2's only


def test_a_picture_that_falls_behind_is_pushed_less_and_the_others_more():
    from vislib.optvis import Objective
    from vislib.units import visualize
    torch.manual_seed(0)
    layer, start = "features.3", 0.15
    reached = torch.tensor([10.0, 9.5, 6.0, 9.5])  # the plain picture, then three diverse: the second one far behind
    goal = Objective(lambda acts: torch.tensor(1.0), "unit", (layer,))
    steered = visualize._with_diversity(goal, layer, lambda acts: reached, start)
    t = torch.rand(4, 6, 5, 5, requires_grad=True)
    for _ in range(5):  # one call sets the weights, four steer them
        total = steered.fn({layer: t})
    got, = torch.autograd.grad(total, t)
    for i, expected in ((0, start * visualize._GROW ** 4), (1, start * max(visualize._SHRINK ** 4, visualize.FLOOR)),
                        (2, start * visualize._GROW ** 4)):
        share, = torch.autograd.grad(visualize._gram_similarity_each(t[1:])[i], t)
        torch.testing.assert_close(got[i + 1], -expected * share[i + 1])
