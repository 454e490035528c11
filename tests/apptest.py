"""What the AppTest files share: start the app, go to a page, check that nothing raised, read
the captions of the pictures shown."""
from streamlit.testing.v1 import AppTest


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def start(timeout: float = 120) -> AppTest:
    """The whole app (app.py, its sidebar and page table), run once."""
    at = AppTest.from_file("../app.py", default_timeout=timeout)
    at.run()
    return ok(at)


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    return ok(at)


def captions(at, where=None) -> list[str]:
    """Every picture's caption, of the whole page or of `where` (at.main, a column...)."""
    return [c for image in (where or at).get("image") for c in image.captions]
