"""The leaderboard page in Debian's Chromium: score fast methods and the baselines on two pictures."""
import io

import pandas as pd
from playwright.sync_api import expect
from steps import idle

from vislib import trust


def test_run_the_leaderboard_on_two_sample_pictures_and_download_the_table(page):
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
    assert page.get_by_test_id("stException").count() == 0
