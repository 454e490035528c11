"""The leaderboard page in Debian's Chromium: score fast methods and the baselines on two pictures, then
go on from their downloaded scores to four."""
import pandas as pd
from playwright.sync_api import expect
from steps import idle

from vislib import trust
from vislib.data.collections import open_collection


def _run(page, pictures, n: int) -> None:
    """Set the number of pictures, press Run and wait for the board over them."""
    pictures.fill(str(n))
    pictures.press("Enter")
    idle(page)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text(f"Over {n} pictures, each explained for the network's top class.")).to_be_visible(
        timeout=300_000)


def _download(page, label: str) -> str:
    """Click a download button; the downloaded file's path."""
    with page.expect_download() as download:
        page.get_by_role("button", name=label).click()
    return download.value.path()


def test_run_the_leaderboard_on_two_sample_pictures_then_go_on_to_four(page):
    page.get_by_role("link", name="Which map to trust").click()
    expect(page.get_by_role("heading", name="Which map to trust")).to_be_visible()
    pictures = page.get_by_role("spinbutton", name="Pictures (spread evenly over the collection)")
    _run(page, pictures, 2)
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart")).to_be_visible()
    table = pd.read_csv(_download(page, "Download the leaderboard (CSV)"))
    # the default choice: Saliency, Grad-CAM and the two baselines; every score but ROAD (the slow one)
    metrics = [m for m in trust.METRICS if m != "road"]
    assert list(table.columns) == trust.COLUMNS
    assert list(zip(table["method"], table["metric"])) == [(m, k) for m in ("saliency", "gradcam", "random", "edges")
                                                           for k in metrics]
    assert (table["n"] == 2).all() and table.groupby("metric")["best"].sum().tolist() == [1] * len(metrics)
    first_path = _download(page, "Download every picture's scores (CSV)")
    first = pd.read_csv(first_path)
    samples = len(open_collection("samples"))
    assert sorted(set(first["picture"])) == trust.spread(samples, 2)

    # four pictures, going on from the first two: the board covers four, the first two's scores kept as they were
    uploads = page.get_by_test_id("stFileUploader").filter(has_text="Go on from an earlier run")
    uploads.locator("input[type=file]").set_input_files(first_path)
    idle(page)
    _run(page, pictures, 4)
    both = pd.read_csv(_download(page, "Download every picture's scores (CSV)"))
    assert sorted(set(both["picture"])) == sorted(trust.spread(samples, 4))
    pd.testing.assert_frame_equal(both[both["picture"].isin(set(first["picture"]))].reset_index(drop=True), first)
    assert page.get_by_test_id("stException").count() == 0
