"""The Attribution page and the leaderboard page under Streamlit's AppTest: the methods picked,
slow maps by a job, the faithfulness scores equal to vislib.trust's, the cut-out, the leaderboard."""
from __future__ import annotations

import numpy as np
import pytest
from apptest import captions, ok
from streamlit.testing.v1 import AppTest

from ui.attribution import LECTURE
from vislib import attribution, trust
from vislib.attribution.segment import segment
from vislib.data.collections import open_collection

CAT = "sample:chelsea (cat)"


def _open(page: str) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_page_shows_the_lecture_methods_then_those_picked_and_fills_slow_rows_by_a_job():
    at = _open("app_pages/attribution.py")
    text = " ".join(m.value for m in at.markdown)
    assert all(f"**{attribution.METHODS[m].label}**" in text for m in LECTURE)
    assert at.multiselect(key="attr-methods").value == LECTURE
    assert sum(c.startswith("range ") for c in captions(at)) == 6  # every lecture method but occlusion
    assert "Run occlusion below the matrix to fill this row." in [i.value for i in at.info]
    at.selectbox(key=f"attr-second-efficientnet_lite0-{CAT}").set_value(283).run()  # Persian cat
    assert sum(c.startswith("range ") for c in captions(ok(at))) == 12
    for label, value in (("Occlusion window (px)", 64), ("Occlusion stride (px)", 32)):
        next(s for s in at.slider if s.label == label).set_value(value).run()
    next(b for b in at.button if b.label == "Run occlusion").click().run()
    assert sum(c.startswith("range ") for c in captions(ok(at))) == 14
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels.count("Download") == 14 and "Download all panels (ZIP, with the raw maps as .npy)" in labels
    at.run()  # the next run draws them from the session's store: no button
    assert "Run occlusion" not in [b.label for b in ok(at).button]
    assert sum(c.startswith("range ") for c in captions(at)) == 14
    at.number_input(key="occ-point-x").set_value(40).run()  # a click on the picture sets the same box
    curve = next(c.proto.spec for c in ok(at).get("plotly_chart") if "probability of" in c.proto.spec)
    assert '"x0":40' in curve.replace(" ", "")  # the dotted line at the point
    # the baselines and a CAM of the new kind, grouped under their headings
    at.multiselect(key="attr-methods").set_value(["gradcam", "gradcam_plus_plus", "random", "edges"]).run()
    text = " ".join(m.value for m in ok(at).markdown)
    assert "Class activation maps: " in text and "Baselines: " in text and "Gradients: " not in text
    assert "**Grad-CAM++**" in text and "**Edges**" in text and "**Saliency**" not in text
    assert sum(c.startswith("range ") for c in captions(at)) == 8 and "Run occlusion" not in [b.label for b in
                                                                                              at.button]


def test_the_scores_table_equals_vislib_trust_and_the_cut_out_equals_segment(lite0, cat):
    at = _open("app_pages/attribution.py")
    at.multiselect(key="attr-methods").set_value(["gradcam", "random"]).run()
    at.multiselect(key="attr-metrics").set_value(["deletion", "insertion", "average_drop", "increase"]).run()
    next(b for b in ok(at).button if b.label == "Score the maps").click().run()
    table = ok(at).dataframe[0].value
    x = lite0.preprocess(cat)[None]
    for method in ("gradcam", "random"):
        amap = attribution.attribute(lite0, x, method, 282)  # the top class, tiger cat
        expected = trust.faithfulness(lite0, x, 282, amap, ["deletion", "insertion", "average_drop", "increase"])
        got = table.loc[attribution.METHODS[method].label].to_dict()
        assert {k.rsplit(" ", 1)[0]: v for k, v in got.items()} == pytest.approx(
            {trust.METRICS[k].label: v for k, v in expected.items()}, abs=1e-6)
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    deletion = next(s for s in specs if "fraction of pixels removed" in s)
    insertion = next(s for s in specs if "fraction of pixels put back" in s)
    assert "Grad-CAM (area " in deletion and "Random (area " in insertion
    assert "Download the scores (CSV)" in [b.proto.label for b in at.get("download_button")]
    # the cut-out: Grad-CAM's map seeds GrabCut
    mask = segment(lite0, x, 282, "gradcam")
    assert f"the mask: {mask.mean():.0%} of the picture" in captions(at)
    assert "Download the cut-out (PNG)" in [b.proto.label for b in at.get("download_button")]


def test_the_leaderboard_page_runs_and_equals_vislib_trust(lite0):
    at = _open("app_pages/leaderboard.py")
    assert at.title[0].value == "Which map to trust"
    at.number_input(key=f"board-pictures-{open_collection('samples').key}").set_value(2).run()
    at.multiselect(key="board-methods-efficientnet_lite0").set_value(["gradcam", "random"]).run()
    at.multiselect(key="board-metrics").set_value(["deletion", "increase"]).run()
    next(b for b in ok(at).button if b.label == "Run").click().run()
    shown = ok(at).dataframe[0].value
    samples = open_collection("samples")
    expected = trust.leaderboard(lite0, samples, ["gradcam", "random"], ["deletion", "increase"],
                                 pictures=trust.spread(len(samples), 2))  # the first and the middle one
    assert shown["method"].tolist() == ["Grad-CAM", "Grad-CAM", "Random", "Random"]
    assert shown["mean"].to_numpy() == pytest.approx(expected["mean"].to_numpy(), abs=1e-6)
    assert shown["pictures"].tolist() == [2] * 4
    assert shown["best"].tolist() == ["★" if b else "" for b in expected["best"]]
    chart = next(c.proto.spec for c in at.get("plotly_chart") if '"error_y"' in c.proto.spec)
    assert "Deletion (area)" in chart and "Increase in confidence %" in chart
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download the leaderboard (CSV)" in labels and "Download every picture's scores (CSV)" in labels
    assert np.isfinite(expected["low"]).all()
