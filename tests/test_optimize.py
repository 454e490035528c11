"""The optimisation engine: objective algebra, parameterisations, the loop's promises to a shared network."""
import dataclasses

import pytest
import torch

from vislib import optvis as O


def test_objectives_add_scale_and_negate_like_numbers():
    a = O.Objective(lambda acts: acts["x"], "a", ["layer.a"])
    b = O.Objective(lambda acts: acts["y"], "b", ["layer.b", "layer.a"])
    acts = {"x": torch.tensor(3.0), "y": torch.tensor(5.0)}
    combined = 2 * a - b
    assert float(combined(acts)) == 2 * 3 - 5
    assert float((a + 1)(acts)) == 4 and float((10 - a)(acts)) == 7 and float((-a / 2)(acts)) == -1.5
    assert combined.layers == ("layer.a", "layer.b")
    assert "a" in combined.name and "b" in combined.name
    with pytest.raises(TypeError):
        a * b


def test_text_box_objectives_parse_into_the_layers_they_need():
    obj = O.parse("blocks.3.0:5 + class:7")
    assert set(obj.layers) == {"blocks.3.0", O.LOGITS}
    acts = {"blocks.3.0": torch.arange(2 * 8 * 2 * 2.0).view(2, 8, 2, 2), O.LOGITS: torch.arange(20.0).view(2, 10)}
    expected = acts["blocks.3.0"][:, 5].mean() + acts[O.LOGITS][:, 7].mean()
    assert torch.isclose(obj(acts), expected)
    assert O.parse("bn2").layers == ("bn2",)
    with pytest.raises(ValueError, match="channel or class number"):
        O.parse("bn2:x")
    with pytest.raises(ValueError):
        O.parse("  ")


def test_objectives_work_on_a_batch_and_batch_picks_one_image():
    acts = {"l": torch.arange(2 * 3 * 2 * 2.0).view(2, 3, 2, 2), O.LOGITS: torch.tensor([[1.0, 2.0], [3.0, 5.0]])}
    assert float(O.channel("l", 1)(acts)) == float(acts["l"][:, 1].mean())
    assert float(O.channel("l", 1, batch=1)(acts)) == float(acts["l"][1, 1].mean())
    assert float(O.class_logit(1, batch=0)(acts)) == 2.0 and float(O.class_logit(1)(acts)) == 3.5
    assert float(O.neuron("l", 2, batch=1)(acts)) == float(acts["l"][1, 2, 1, 1])  # the centre cell
    assert O.channel("l", 1, batch=1).reads == (("l", 1),) and O.class_logit(7).reads == ((O.LOGITS, 7),)
    image = torch.rand(2, 3, 8, 8)
    same = {O.IMAGE: torch.cat([image[:1], image[:1]])}
    assert float(O.l2()(same)) == pytest.approx(float(O.l2()({O.IMAGE: image[:1]})))  # per image
    f = torch.randn(1, 4, 5, 6)
    assert float(O.gram_match("l", O.gram(f))({"l": torch.cat([f, 2 * f])})) == pytest.approx(9 / 2, rel=1e-5)
    assert O.fourier(16, batch=3, device="cpu").make_image().shape == (3, 3, 16, 16)
    assert O.pixels(16, batch=2, device="cpu").make_image().shape == (2, 3, 16, 16)


def test_gram_and_feature_matching_are_zero_at_their_target_and_positive_elsewhere():
    f = torch.randn(1, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    g = O.gram(f)
    assert g.shape == (1, 4, 4)
    assert torch.allclose(g[0], f[0].reshape(4, 30) @ f[0].reshape(4, 30).T / 30)
    assert float(O.gram_match("l", g)({"l": f})) == pytest.approx(0, abs=1e-6)
    assert float(O.gram_match("l", g)({"l": 2 * f})) == pytest.approx(9, rel=1e-5)  # (4g - g)^2 / g^2
    assert float(O.feature_match("l", f)({"l": 2 * f})) == pytest.approx(1, rel=1e-5)


def test_parameterisations_make_valid_reproducible_images():
    p = O.fourier(32, seed=3)
    image = p.make_image().detach()
    assert image.shape == (1, 3, 32, 32) and 0 < float(image.min()) and float(image.max()) < 1
    assert torch.equal(image, O.fourier(32, seed=3).make_image().detach())
    assert not torch.equal(image, O.fourier(32, seed=4).make_image().detach())
    init = torch.full((1, 3, 4, 4), 0.5)
    q = O.pixels(init=init, low=init - 0.1, high=init + 0.1, quantise=True, device="cpu")
    with torch.no_grad():
        q.pixels.add_(0.3)
    q.constrain()
    assert torch.allclose(q.pixels, init + 0.1)
    assert torch.equal(q.make_image() * 255, (q.pixels * 255).round())  # the 8 bits a PNG keeps


def test_regularising_image_operations():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 16, 16, generator=gen)
    clipped = x.clone()
    O.clip_small_norm(50)(1, clipped, None)
    grey = (clipped == 0.5).all(1).float().mean()
    assert 0.45 <= float(grey) <= 0.55
    smooth = x.clone()
    O.blur(1.0, every=4)(8, smooth, None)
    tv = O.total_variation()
    assert float(tv({O.IMAGE: smooth})) < 0.5 * float(tv({O.IMAGE: x}))
    untouched = x.clone()
    O.blur(1.0, every=4)(3, untouched, None)  # not a blurring step
    assert torch.equal(untouched, x)
    decayed = x.clone()
    O.decay(0.5)(1, decayed, None)
    assert torch.allclose(decayed - 0.5, (x - 0.5) / 2, atol=1e-6)


def test_transforms_keep_the_size_and_follow_the_seed():
    x = torch.rand(1, 3, 20, 20)
    outs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(1)
        y = x
        for t in O.standard_transforms():
            y = t(y, gen)
        outs.append(y)
    assert outs[0].shape == (1, 3, 20, 20)  # the image's own size
    assert torch.equal(*outs)
    assert not torch.equal(outs[0], x)


def test_the_affine_view_moves_the_picture_and_brings_in_grey():
    x = torch.rand(1, 3, 16, 16)
    moved = O.affine(x, 0.0, 1.0, (3, -2))  # 3 px right, 2 px up
    assert torch.allclose(moved[..., :-2, 3:], x[..., 2:, :-3], atol=1e-5)
    assert torch.allclose(moved[..., :, :3], torch.full_like(moved[..., :, :3], 0.5))  # grey came in
    assert torch.allclose(moved[..., -2:, :], torch.full_like(moved[..., -2:, :], 0.5))
    turned = O.affine(x, 90.0, 1.0)
    assert torch.allclose(turned, torch.rot90(x, -1, dims=(-2, -1)), atol=1e-5) or \
        torch.allclose(turned, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)


def test_stopping_from_the_callback_returns_early_with_an_image(lite0):
    calls = []

    def progress(step, total, preview=None, **info):
        calls.append((step, total, preview, info))
        return step < 3
    image = O.render(lite0, O.class_logit(1), O.pixels(64), steps=50, progress=progress, preview_every=2)
    assert [c[0] for c in calls] == [1, 2, 3] and calls[0][1] == 50
    assert calls[0][2] is None and calls[1][2].size == (64, 64)
    assert "loss" in calls[0][3]
    assert image.shape == (1, 3, 64, 64)


def test_a_run_leaves_the_shared_network_as_it_was(lite0):
    before = {k: v.clone() for k, v in lite0.net.state_dict().items()}
    O.render(lite0, O.channel("blocks.2.0", 3) - 1e-3 * O.l2(), O.fourier(48), O.standard_transforms(), steps=2)
    with pytest.raises(KeyError, match="has no layer named 'no.such.layer'"):  # a LayerError, also a ValueError
        O.render(lite0, O.channel("no.such.layer", 0), O.pixels(32), steps=1)
    modules = list(lite0.net.modules())
    assert not any(m._forward_hooks for m in modules)
    assert not any(m.training for m in modules)
    assert not any(p.requires_grad for p in lite0.net.parameters())
    after = lite0.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_an_early_layer_objective_does_not_run_the_rest_of_the_network(lite0):
    seen = []
    handle = lite0.net.classifier.register_forward_hook(lambda *a: seen.append(1))
    try:
        O.render(lite0, O.channel("blocks.1.0", 0), O.pixels(32), steps=2)
        assert seen == []
        O.render(lite0, O.channel("blocks.1.0", 0) + O.class_logit(2), O.pixels(32), steps=2)
        assert len(seen) == 2
    finally:
        handle.remove()


def test_a_channel_or_class_the_network_lacks_is_one_sentence_before_any_work(lite0):
    calls = []
    with pytest.raises(ValueError, match=r"^blocks.2.0 has channels 0 to 39; there is no channel 40\.$"):
        O.render(lite0, O.parse("blocks.2.0:40"), O.pixels(32), steps=5, progress=lambda *a, **k: calls.append(a))
    with pytest.raises(ValueError, match=r"^Class 1000 does not exist; efficientnet_lite0 has classes 0 to 999\.$"):
        O.render(lite0, O.class_logit(1000) - O.l2(), O.pixels(32), steps=5, progress=lambda *a, **k: calls.append(a))
    assert calls == []
    # A module outside the catalogue: its channels are measured (the expansion conv of a block).
    assert O.channels(lite0, "blocks.2.0.conv_pw") == lite0.module("blocks.2.0.conv_pw").out_channels
    O.check(lite0, O.channel("blocks.2.0.conv_pw", O.channels(lite0, "blocks.2.0.conv_pw") - 1))


def test_a_batch_renders_one_objective_per_image(lite0):
    start = O.pixels(32, batch=2, device=lite0.device).make_image().detach()
    images = O.render(lite0, O.channel("blocks.1.0", 0, batch=0), O.pixels(32, batch=2, device=lite0.device), steps=3)
    assert images.shape == (2, 3, 32, 32)
    assert not torch.equal(images[0], start[0]) and torch.equal(images[1], start[1])  # image 1 had no objective


def test_an_image_on_another_device_than_the_network_is_one_sentence(lite0):
    elsewhere = dataclasses.replace(lite0, device=torch.device("meta"))
    sentence = r"^The image is on cpu but the network on meta: make it with device=model.device.$"
    with pytest.raises(ValueError, match=sentence):
        O.render(elsewhere, O.class_logit(1), O.pixels(8, device="cpu"), steps=1)


def test_until_returns_the_image_that_met_the_condition(lite0):
    steps = []
    image = O.render(lite0, O.class_logit(1), O.pixels(32), steps=20, until=lambda acts: len(steps) >= 4,
                     progress=lambda step, *a, **k: steps.append(step))
    assert steps[-1] == 5 and image.shape == (1, 3, 32, 32)


def test_normalized_ascent_moves_by_the_step_over_the_mean_absolute_gradient():
    p = torch.zeros(4, requires_grad=True)
    p.grad = torch.tensor([1.0, -3.0, 2.0, 2.0])  # mean |g| = 2
    O.NormalizedAscent([p], lr=0.1).step()
    assert torch.allclose(p.detach(), torch.tensor([-0.05, 0.15, -0.1, -0.1]))


def test_our_lbfgs_takes_torchs_steps():
    """The GPU-friendly L-BFGS (no reads back to Python) follows torch's LBFGS(max_iter=1) step for step."""
    def f(x):  # a smooth bowl that is not quadratic, so the history matters
        return ((x - 1) ** 2 * torch.arange(1, 7.0)).sum() + 0.1 * (x ** 4).sum() + (x[0] * x[1]) ** 2
    ours, theirs = torch.zeros(6, requires_grad=True), torch.zeros(6, requires_grad=True)
    opts = O.LBFGS([ours], lr=0.8, history_size=5), torch.optim.LBFGS([theirs], lr=0.8, max_iter=1, history_size=5)
    for _ in range(30):
        for opt, x in zip(opts, (ours, theirs)):
            def closure(opt=opt, x=x):
                opt.zero_grad()
                loss = f(x)
                loss.backward()
                return loss
            opt.step(closure)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert float(f(ours.detach())) < 0.9 < float(f(torch.zeros(6)))
