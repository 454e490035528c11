"""The leaderboard page in Debian's Chromium: score fast methods and the baselines on two pictures, then
go on from their downloaded scores to four."""
import io

import pandas as pd
from playwright.sync_api import expect
from steps import idle

from vislib import trust
from vislib.data.collections import open_collection


def test_run_the_leaderboard_on_two_sample_pictures_then_go_on_to_four(page):
    page.get_by_role("link", name="Which map to trust").click()
    expect(page.get_by_role("heading", name="Which map to trust")).to_be_visible()
    pictures = page.get_by_role("spinbutton", name="Pictures (spread evenly over the collection)")
    pictures.fill("2")
    pictures.press("Enter")
    idle(page)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("Over 2 pictures, each explained for the network's top class.")).to_be_visible(
        timeout=300_000)
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the leaderboard (CSV)").click()
    table = pd.read_csv(io.BytesIO(open(download.value.path(), "rb").read()))
    # the default choice: Saliency, Grad-CAM and the two baselines; every score but ROAD (the slow one)
    metrics = [m for m in trust.METRICS if m != "road"]
    assert list(table.columns) == trust.COLUMNS
    assert list(zip(table["method"], table["metric"])) == [(m, k) for m in ("saliency", "gradcam", "random", "edges")
                                                           for k in metrics]
    assert (table["n"] == 2).all() and table.groupby("metric")["best"].sum().tolist() == [1] * len(metrics)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download every picture's scores (CSV)").click()
    first_path = download.value.path()
    first = pd.read_csv(first_path)
    assert sorted(set(first["picture"])) == trust.spread(len(open_collection("samples")), 2)

    # four pictures, going on from the first two: the board covers four, the first two's scores kept as they were
    uploads = page.get_by_test_id("stFileUploader").filter(has_text="Go on from an earlier run")
    uploads.locator("input[type=file]").set_input_files(first_path)
    idle(page)
    pictures.fill("4")
    pictures.press("Enter")
    idle(page)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("Over 4 pictures, each explained for the network's top class.")).to_be_visible(
        timeout=300_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download every picture's scores (CSV)").click()
    both = pd.read_csv(download.value.path())
    assert sorted(set(both["picture"])) == sorted(trust.spread(len(open_collection("samples")), 4))
    pd.testing.assert_frame_equal(both[both["picture"].isin(set(first["picture"]))].reset_index(drop=True), first)
    assert page.get_by_test_id("stException").count() == 0
