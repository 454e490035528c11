"""Steps the browser tests share: wait for the page's script to finish, click a plotly chart."""
from playwright.sync_api import expect


def idle(page):
    """Wait until the script run that the last action started has finished."""
    page.wait_for_timeout(300)  # the run may not have started yet
    expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(1)


def click_chart(page, chart, fx: float, fy: float, took_effect, tries: int = 4) -> None:
    """Click a plotly chart at (fx, fy), fractions of its box, until `took_effect(timeout_ms)` passes.

    Why again: a click that lands while plotly is still drawing the chart, or while the page's script
    is still running below it, can be lost on a slow machine (it was, once, in CI). A person would
    click again; so does the test, and the last try's failure is the test's."""
    idle(page)
    chart.locator(".scatterlayer .point").first.wait_for(state="attached")
    for attempt in range(tries):
        chart.scroll_into_view_if_needed()
        box = chart.bounding_box()
        x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        try:
            took_effect(15_000 if attempt < tries - 1 else 60_000)
            return
        except AssertionError:
            if attempt == tries - 1:
                raise
