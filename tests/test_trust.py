"""Can the maps be trusted: the randomisation sanity check and the deletion curve."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vislib
from vislib import attribution, trust
from vislib.images import sample_images

from test_attribution import assert_unchanged, picture, snapshot


@pytest.fixture(scope="module")
def lite0():
    return vislib.load_model("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def x(lite0):
    return picture(lite0, sample_images()["chelsea (cat)"](), 64)


def test_randomisation_goes_from_the_classifier_down_on_a_copy(lite0, x):
    before = snapshot(lite0)
    seen = []
    check = trust.randomisation_check(lite0, x, 281, ["saliency", "gradcam"],
                                      progress=lambda step, total, **_: seen.append((step, total)))
    assert_unchanged(lite0, before)  # the shared network: same weights, flags, no hooks
    assert check.steps[:4] == ["original", "classifier", "bn2", "blocks.6.0"] and check.steps[-1] == "bn1"
    assert len(check.steps) == 20 and seen[-1] == (19, 19)
    for method in ("saliency", "gradcam"):
        assert len(check.maps[method]) == len(check.correlation[method]) == 20
        assert check.correlation[method][0] == pytest.approx(1.0)
        assert torch.equal(check.maps[method][0], attribution.attribute(lite0, x, method, 281))
    # Grad-CAM depends on the learned weights: once the top is random, its map is another map.
    assert min(check.correlation["gradcam"][2:]) < 0.5


def test_randomisation_stops_when_asked(lite0, x):
    check = trust.randomisation_check(lite0, x, 281, ["saliency"], progress=lambda step, total, **_: step < 2)
    assert check.steps == ["original", "classifier", "bn2"] and len(check.maps["saliency"]) == 3


def test_deletion_curve_starts_at_the_clean_probability_and_ranks_faithful_maps_lower(lite0):
    x = picture(lite0, sample_images()["chelsea (cat)"](), 160)  # big enough to be a cat: Egyptian cat, 0.93
    cam = attribution.gradcam(lite0, x, 285)
    curve = trust.deletion_curve(lite0, x, 285, cam, steps=10)
    assert curve.fractions == pytest.approx(np.linspace(0, 1, 11).tolist(), abs=1e-3)  # whole pixels
    assert curve.scores[0] == pytest.approx(float(lite0.probabilities(x)[0, 285]), abs=1e-6)
    blank = x.mean((2, 3), keepdim=True).expand_as(x)
    assert curve.scores[-1] == pytest.approx(float(lite0.probabilities(blank)[0, 285]), abs=1e-6)
    assert curve.auc == pytest.approx(float(np.trapezoid(curve.scores, curve.fractions)))
    reversed_ = trust.deletion_curve(lite0, x, 285, -cam, steps=10)
    assert curve.auc < reversed_.auc  # removing the evidence first makes the score fall sooner
    curves = trust.deletion_curves(lite0, x, 285, {"gradcam": cam.numpy(), "reverse": -cam}, steps=10)
    assert curves["gradcam"].scores == pytest.approx(curve.scores) and curves["reverse"].auc == reversed_.auc
    with pytest.raises(ValueError, match=r"The map is \(32, 32\) but the picture is \(160, 160\)."):
        trust.deletion_curve(lite0, x, 285, cam[:32, :32])


def test_deletion_curves_report_each_batch_and_stop_when_asked(lite0, x):
    cam = attribution.gradcam(lite0, x, 281)
    seen = []

    def progress(done, total, **_):
        seen.append((done, total))
        return done < 11
    curves = trust.deletion_curves(lite0, x, 281, {"gradcam": cam, "reverse": -cam, "again": cam}, steps=10,
                                   progress=progress)
    assert seen == [(11, 33)] and list(curves) == ["gradcam"]  # one batch of 11 pictures per curve on a CPU


def test_the_checks_leave_the_global_random_generator_alone(lite0, x):
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    trust.randomisation_check(lite0, x, 281, ["gradcam"], progress=lambda step, total, **_: step < 1)
    assert torch.equal(torch.rand(4), expected)


def test_the_old_names_are_the_new_packages_objects():
    import sys

    import vislib.attribution.trust as old
    curves, sanity = sys.modules["vislib.trust.curves"], sys.modules["vislib.trust.sanity"]  # (`curves` is a function too)
    assert trust.__path__ and trust.__name__ == "vislib.trust"  # a package now, no longer an alias
    assert old.deletion_curve is trust.deletion_curve is curves.deletion_curve
    assert old.randomisation_check is trust.randomisation_check is sanity.randomisation_check
    assert old.DeletionCurve is trust.DeletionCurve is trust.Curve and old.RandomisationCheck is trust.RandomisationCheck
