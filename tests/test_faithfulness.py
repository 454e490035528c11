"""Faithfulness scores, the leaderboard and `vislib evaluate`: each score against a plain reference
computation written here (or pytorch-grad-cam's own call), on fashion_cnn's 28 px pictures."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from pytorch_grad_cam.metrics.road import NoisyLinearImputer, ROADCombined, neighbors_weights
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy import stats

from vislib import trust
from vislib.attribution import attribute
from vislib.cli import main
from vislib.trust.road import _Imputer, linear_system


@pytest.fixture(scope="module")
def case(random_fashion):
    """A picture x [1,3,28,28], its top class, and a map with no ties (its order is unambiguous)."""
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(0, 1, (1, 3, 28, 28)).astype(np.float32))
    target = int(random_fashion.probabilities(x)[0].argmax())
    return x, target, rng.random((28, 28)).astype(np.float32)


def probability(model, batch, target) -> np.ndarray:
    with model.running() as net, torch.no_grad():
        return net(batch).softmax(1)[:, target].numpy()


def trapezoid(ys, xs) -> float:
    return sum((ys[i] + ys[i + 1]) / 2 * (xs[i + 1] - xs[i]) for i in range(len(xs) - 1))


def reference_curve(model, x, target, amap, start, end, steps):
    """Copy k: the first n_k pixels of the map's order taken from `end`, the rest from `start`."""
    order = np.argsort(-amap.flatten(), kind="stable")
    rows, cols = np.unravel_index(order, amap.shape)
    fractions, scores = [], []
    for k in range(steps + 1):
        n = round(k * amap.size / steps)
        copy = start.clone()
        copy[0, :, rows[:n], cols[:n]] = end[0, :, rows[:n], cols[:n]]
        fractions.append(n / amap.size)
        scores.append(float(probability(model, copy, target)[0]))
    return fractions, scores, trapezoid(scores, fractions)


def test_deletion_is_the_area_under_the_probability_as_pixels_turn_the_mean_colour(random_fashion, case):
    x, target, amap = case
    mean = x.mean((2, 3), keepdim=True).expand_as(x)
    fractions, scores, area = reference_curve(random_fashion, x, target, amap, x, mean, 7)
    curve = trust.deletion_curve(random_fashion, x, target, torch.from_numpy(amap), steps=7)
    assert curve.fractions == pytest.approx(fractions) and curve.scores == pytest.approx(scores, abs=1e-6)
    assert curve.auc == pytest.approx(area, abs=1e-6)
    assert trust.faithfulness(random_fashion, x, target, amap, ["deletion"], steps=7) == {
        "deletion": pytest.approx(area, abs=1e-6)}


def test_insertion_puts_pixels_back_into_the_blurred_picture(random_fashion, case):
    x, target, amap = case
    # OpenCV's blur (kernel 11, sigma 5, mirrored edges) as the independent blur
    hwc = x[0].permute(1, 2, 0).numpy()
    blur = cv2.GaussianBlur(hwc, (11, 11), 5, borderType=cv2.BORDER_REFLECT_101)
    blur = torch.from_numpy(blur).permute(2, 0, 1)[None]
    assert torch.allclose(trust.blurred(x), blur, atol=1e-5)
    fractions, scores, area = reference_curve(random_fashion, x, target, amap, blur, x, 10)
    curve = trust.insertion_curve(random_fashion, x, target, amap, steps=10)
    assert curve.scores == pytest.approx(scores, abs=1e-5) and curve.auc == pytest.approx(area, abs=1e-5)
    assert curve.scores[-1] == pytest.approx(float(random_fashion.probabilities(x)[0, target]), abs=1e-6)
    assert trust.faithfulness(random_fashion, x, target, amap, ["insertion"], steps=10)["insertion"] == \
        pytest.approx(area, abs=1e-5)


def test_average_drop_and_increase_follow_chattopadhay_on_the_picture_times_the_map(random_fashion, case):
    x, target, amap = case
    scaled = (amap - amap.min()) / (amap.max() - amap.min())
    y = float(probability(random_fashion, x, target)[0])
    o = float(probability(random_fashion, x * torch.from_numpy(scaled), target)[0])
    scores = trust.faithfulness(random_fashion, x, target, amap, ["average_drop", "increase"])
    assert scores["average_drop"] == pytest.approx(100 * max(0.0, y - o) / y, abs=1e-4)
    assert scores["increase"] == (100.0 if o > y else 0.0)
    # a constant map ranks nothing: scaled to [0, 1] it is all 0 (as pytorch-grad-cam scales a CAM),
    # which leaves the mean-colour picture (0 in the normalised input)
    grey = float(probability(random_fashion, torch.zeros_like(x), target)[0])
    flat = trust.faithfulness(random_fashion, x, target, np.ones((28, 28)), ["average_drop", "increase"])
    assert flat == {"average_drop": pytest.approx(100 * max(0.0, y - grey) / y, abs=1e-4),
                    "increase": 100.0 if grey > y else 0.0}


def test_road_is_pytorch_grad_cams_combined_road_at_20_40_60_80(random_fashion, case):
    x, target, amap = case
    scaled = ((amap - amap.min()) / (amap.max() - amap.min())).astype(np.float32)
    with torch.random.fork_rng(), random_fashion.running() as net:
        torch.manual_seed(3)  # the imputation's noise
        expected = float(ROADCombined([20, 40, 60, 80])(x, scaled[None], [ClassifierOutputSoftmaxTarget(target)],
                                                        net)[0])
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    assert trust.faithfulness(random_fashion, x, target, amap, ["road"], seed=3)["road"] == pytest.approx(expected)
    assert torch.equal(torch.rand(3), before)  # the global generator is left as it was
    assert trust.ROAD_PERCENTILES == (20, 40, 60, 80)


@pytest.mark.parametrize("removed", [0.2, 0.8])
def test_roads_equation_system_and_imputed_picture_are_the_librarys(removed):
    """A smooth map's most relevant pixels (a contiguous region, as a CAM's) at 96 px: the same
    matrix and right-hand side as NoisyLinearImputer's, and the same filled picture for one seed."""
    rng = np.random.default_rng(2)
    smooth = cv2.resize(rng.random((6, 6)).astype(np.float32), (96, 96), interpolation=cv2.INTER_LINEAR)
    mask = (smooth < np.percentile(smooth, 100 * removed)).astype(np.float32)  # 0: missing, as the library's
    img = torch.from_numpy(rng.normal(0, 1, (3, 96, 96)).astype(np.float32))
    expected_a, expected_b = NoisyLinearImputer.setup_sparse_system(mask, img.numpy(), neighbors_weights)
    matrix, b = linear_system(mask, img.numpy())
    assert matrix.shape == expected_a.shape == (int((mask == 0).sum()),) * 2
    assert (matrix != expected_a.tocsc()).nnz == 0
    assert np.array_equal(b, expected_b)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        expected = NoisyLinearImputer()(img, torch.from_numpy(mask))
        torch.manual_seed(5)
        filled = _Imputer()(img, torch.from_numpy(mask))
    assert torch.allclose(filled, expected, atol=1e-6)
    assert torch.equal(filled[:, mask == 1], img[:, mask == 1])  # known pixels untouched
    assert not torch.allclose(filled, img)


def test_every_metric_says_which_way_is_better_and_bad_input_is_one_sentence(random_fashion, case):
    x, target, amap = case
    assert {m: trust.METRICS[m].higher_is_better for m in trust.METRICS} == {
        "deletion": False, "insertion": True, "road": True, "average_drop": False, "increase": True}
    scores = trust.faithfulness(random_fashion, x, target, amap)
    assert list(scores) == list(trust.METRICS) and all(math.isfinite(v) for v in scores.values())
    with pytest.raises(ValueError, match=r"^Unknown faithfulness metric 'auc'; choose from: deletion, insertion, "):
        trust.faithfulness(random_fashion, x, target, amap, ["auc"])
    with pytest.raises(ValueError, match=r"^The map is \(14, 14\) but the picture is \(28, 28\)\.$"):
        trust.faithfulness(random_fashion, x, target, amap[:14, :14])


# ---------------------------------------------------------------- the leaderboard

@pytest.fixture(scope="module")
def board(random_fashion, noise_pictures):
    pictures = noise_pictures(3, seed=5)
    metrics = ("deletion", "insertion", "average_drop", "increase")
    scores = trust.picture_scores(random_fashion, pictures, ["saliency", "gradcam"], metrics, steps=5)
    return pictures, metrics, scores, trust.summarise(scores)


def test_the_leaderboard_has_a_row_per_method_and_metric_with_a_t_interval(random_fashion, board):
    pictures, metrics, scores, table = board
    assert list(scores.columns) == trust.SCORE_COLUMNS and len(scores) == 3 * 2 * 4
    assert list(table.columns) == trust.COLUMNS and table.shape == (8, 8)
    assert list(zip(table["method"], table["metric"])) == [(m, k) for m in ("saliency", "gradcam") for k in metrics]
    assert (table["n"] == 3).all() and (table["low"] <= table["mean"]).all() and (table["mean"] <= table["high"]).all()
    for row in table.itertuples():
        values = scores[(scores.method == row.method) & (scores.metric == row.metric)]["value"].to_numpy()
        low, high = stats.t.interval(0.95, 2, loc=values.mean(), scale=stats.sem(values)) if values.std() else \
            (values.mean(), values.mean())
        assert (row.mean, row.low, row.high) == pytest.approx((values.mean(), low, high))
    # one score checked against faithfulness itself: picture 1, Grad-CAM, its top class
    x = random_fashion.preprocess(pictures[1][0])[None]
    target = int(random_fashion.probabilities(x)[0].argmax())
    amap = attribute(random_fashion, x, "gradcam", target)
    one = trust.faithfulness(random_fashion, x, target, amap, metrics, steps=5)
    got = scores[(scores.picture == 1) & (scores.method == "gradcam")]
    assert dict(zip(got.metric, got.value)) == pytest.approx(one) and set(got.target) == {target}
    for metric in metrics:  # exactly one best per metric, in the metric's direction
        rows = table[table.metric == metric]
        pick = rows["mean"].idxmax() if trust.METRICS[metric].higher_is_better else rows["mean"].idxmin()
        assert rows["best"].sum() == 1 and bool(table.loc[pick, "best"])


def test_the_leaderboard_stops_with_the_finished_pictures(random_fashion, noise_pictures):
    pictures = noise_pictures(3, seed=5)
    seen = []

    def progress(done, total, *_, **info):
        seen.append((done, total, info["picture"], info["method"]))
        return done < 3  # stop after the first map of the second picture
    table = trust.leaderboard(random_fashion, pictures, ["saliency", "gradcam"], ["deletion"], progress, steps=4)
    assert seen == [(1, 6, 0, "saliency"), (2, 6, 0, "gradcam"), (3, 6, 1, "saliency")]
    assert table["n"].tolist() == [1, 1] and table["low"].isna().all()  # one picture: no interval
    with pytest.raises(ValueError, match=r"^Unknown attribution method 'lime'; choose one of: saliency, "):
        trust.leaderboard(random_fashion, pictures, ["lime"])
    with pytest.raises(ValueError, match=r"^The collection has 3 pictures; there is no picture 3\.$"):
        trust.leaderboard(random_fashion, pictures, ["saliency"], pictures=[3])


def test_a_run_goes_on_from_earlier_scores_and_makes_only_the_missing_maps(random_fashion, board):
    pictures, metrics, scores, _ = board
    # picture 0 whole, picture 1 without Grad-CAM, picture 2 with Grad-CAM's deletion only
    partial = scores[(scores.picture == 0) | ((scores.picture == 1) & (scores.method == "saliency")) |
                     ((scores.picture == 2) & (scores.method == "gradcam") & (scores.metric == "deletion"))]
    assert trust.scored(partial, metrics) == {(0, "saliency"), (0, "gradcam"), (1, "saliency")}
    seen, handed = [], []
    again = trust.picture_scores(random_fashion, pictures, ["saliency", "gradcam"], metrics, steps=5,
                                 progress=lambda done, total, *_, **info: seen.append((done, total, info["picture"],
                                                                                       info["method"])),
                                 earlier=partial.sample(frac=1, random_state=0), each=handed.append)
    assert seen == [(1, 3, 1, "gradcam"), (2, 3, 2, "saliency"), (3, 3, 2, "gradcam")]  # 3 maps, not 6
    assert [sorted(set(zip(h.picture, h.method))) for h in handed] == [
        [(1, "gradcam")], [(2, "gradcam"), (2, "saliency")]]
    pd.testing.assert_frame_equal(again, scores, check_exact=False, atol=1e-6)  # the same table, in its order


def test_earlier_scores_that_are_not_a_scores_table_get_one_sentence(tmp_path):
    (tmp_path / "board.csv").write_text("method,metric,mean\ngradcam,deletion,0.2\n")
    with pytest.raises(ValueError, match=r"board.csv has no picture, target, value column: it is not a table of "):
        trust.read_scores(tmp_path / "board.csv")
    (tmp_path / "odd.csv").write_text("picture,target,method,metric,value\n0,1,gradcam,auc,0.2\n")
    with pytest.raises(ValueError, match=r"odd.csv holds the unknown metric 'auc'; the metrics are deletion, "):
        trust.read_scores(tmp_path / "odd.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"empty.csv is not a CSV table\.$"):
        trust.read_scores(tmp_path / "empty.csv")


def test_an_interval_is_students_t():
    values = [1.0, 2.0, 4.0, 7.0]
    mean, low, high, n = trust.interval(values)
    assert (mean, n) == (3.5, 4)
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 3, loc=3.5, scale=stats.sem(values)))
    assert trust.interval([])[3] == 0 and math.isnan(trust.interval([2.0])[1])


def test_spread_takes_pictures_evenly_and_every_prefix_is_spread_too():
    order = trust.spread(1000, 1000)
    assert sorted(order) == list(range(1000))
    assert sorted(order[:8]) == list(range(0, 1000, 128))
    for k in range(1, 1001):  # a run stopped after any k pictures leaves no gap over about twice 1000 / k
        assert max(np.diff(sorted(order[:k]) + [1000])) <= 2 * 1000 / k + 1, k
    assert sorted(trust.spread(1000, 8)) == list(range(0, 1000, 125))
    assert trust.spread(10, 4) == [0, 5, 2, 8] and trust.spread(1000, 2) == [0, 500]
    assert trust.spread(3, 5) == [0, 2, 1] and trust.spread(0, 4) == []


# ---------------------------------------------------------------- vislib evaluate

@pytest.fixture(scope="module")
def folder(noise_pictures):
    return noise_pictures(2, seed=9)._items[0].rsplit("/", 1)[0]


def test_evaluate_writes_the_leaderboard_as_csv(folder, tmp_path, capsys):
    out, scores = tmp_path / "board.csv", tmp_path / "scores.csv"
    assert main(["evaluate", "--model", "fashion_cnn", "--methods", "saliency,gradcam", "--collection", folder,
                 "--metrics", "deletion,increase", "--steps", "4", "--out", str(out), "--scores", str(scores)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == trust.COLUMNS and len(table) == 4 and (table["n"] == 2).all()
    assert list(table["metric"]) == ["deletion", "increase"] * 2
    assert len(pd.read_csv(scores)) == 2 * 2 * 2
    assert f"wrote {out} (4 rows over 2 pictures)" in capsys.readouterr().out


def test_evaluate_takes_its_pictures_spread_over_the_collection_and_goes_on(noise_pictures, tmp_path, capsys):
    folder = noise_pictures(4, seed=3)._items[0].rsplit("/", 1)[0]
    scores = tmp_path / "scores.csv"
    assert main(["evaluate", "--model", "fashion_cnn", "--methods", "saliency", "--collection", folder, "--pictures",
                 "2", "--metrics", "increase", "--out", str(tmp_path / "b.csv"), "--scores", str(scores)]) == 0
    assert pd.read_csv(scores)["picture"].tolist() == [0, 2]
    # a longer run with the same --scores goes on from them: only pictures 1 and 3 are new
    first = pd.read_csv(scores)
    assert main(["evaluate", "--model", "fashion_cnn", "--methods", "saliency", "--collection", folder, "--metrics",
                 "increase", "--out", str(tmp_path / "b.csv"), "--scores", str(scores)]) == 0
    assert "going on from" in capsys.readouterr().err
    kept = pd.read_csv(scores)
    assert kept["picture"].tolist() == [0, 2, 1, 3]  # appended in spread order, none made twice
    pd.testing.assert_frame_equal(kept.iloc[:2], first)
    assert pd.read_csv(tmp_path / "b.csv")["n"].tolist() == [4]


@pytest.mark.parametrize("args, message", [
    (["--methods", "saliency,lime"], "error: Unknown attribution method 'lime'; choose one of: saliency,"),
    (["--methods", "saliency", "--model", "nope"], "error: 'nope' is neither a network this app knows"),
    (["--methods", "saliency", "--collection", "/no/such/folder"],
     "error: There is no folder or zip file named /no/such/folder."),
    (["--methods", "saliency", "--metrics", "auc"], "error: Unknown faithfulness metric 'auc'; choose from:"),
    (["--methods", "saliency", "--out", "board.txt"], "error: board.txt should end in .csv."),
])
def test_evaluate_mistakes_are_one_line_and_status_1(folder, tmp_path, capsys, args, message):
    base = ["evaluate", "--model", "fashion_cnn", "--collection", folder, "--out", str(tmp_path / "b.csv")]
    assert main(base + args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
