"""The guided tour under AppTest: every step's text, figure and demo (on fashion_cnn, classroom settings),
the step and presenter mode taken from the URL, the Previous / Next buttons."""
import re

import pytest
from apptest import captions
from streamlit.testing.v1 import AppTest

from ui import presets
from ui.tour import PRESENTER_CSS
from ui.tour_steps import SLUGS, STEPS, index_of

# What each demo shows on fashion_cnn (28 x 28 grey input): (number of pictures, first caption).
SHOWN = {
    "first-layer": (1, r"The 32 filters of conv1, 7 x 7 pixels each"),
    "activations": (2, r"The 16 strongest of 64 channels of conv2"),
    "last-layer": (2, r"The 4 nearest of 9 sample pictures in feature space"),
    "patches": (1, r"Top 9 patches of channel \d+ of \S+ \(receptive field \d+ px\)"),
    "unit": (2, r"Top 9 sample pictures of channel \d+ of \S+: the cell's view"),
    "occlusion": (1, r"Drop in the class's probability under a 7 px grey square"),
    "saliency": (2, r"Saliency: \|gradient\|"),
    "gradcam": (2, r"Grad-CAM of .+ \(\d+\.\d%\)"),
    "class-images": (1, r".+, 40 steps"),
    "fooling": (3, r"Original"),
    "deepdream": (1, r"Dreamed on \S+"),
    "inversion": (2, r"What the network sees"),
    "texture": (2, r"The sample"),
    "style": (2, r"The style"),
}


def _tour(params=None, model="fashion_cnn"):
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.run()
    at.selectbox(key="model_name").set_value(model).run()
    at.switch_page("app_pages/tour.py")
    for name, value in (params or {}).items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_table_is_the_lecture_in_order():
    assert SLUGS == list(SHOWN)
    assert len(set(SLUGS)) == len(SLUGS)
    for step in STEPS:
        assert 2 <= step.text.count(". ") + 1 <= 4, step.slug  # two or three sentences to read aloud
        assert re.search(r"(19|20)\d\d", step.figure), step.slug  # names the paper's year
        if step.preset:
            assert step.preset in presets.TABLES
        else:
            assert not step.settings or set(step.settings) == set(presets.NAMES)
    assert index_of("gradcam") == SLUGS.index("gradcam")
    assert index_of("3") == 2 and index_of("0") == 0 and index_of("99") == 0 and index_of(None) == 0


@pytest.mark.parametrize("slug", list(SHOWN))
def test_each_step_reads_names_its_figure_and_runs_its_demo(slug):
    index = SLUGS.index(slug)
    step = STEPS[index]
    at = _tour({"step": slug})
    assert at.header[0].value == f"{index + 1}. {step.title}"
    assert step.text in [m.value for m in at.markdown]
    assert f"Figure: {step.figure}" in [c.value for c in at.caption]
    assert at.button_group(key="tour-preset").value == presets.CLASSROOM  # the CPU's default
    at.button(key=f"run:tour:{slug}:fashion_cnn:sample:chelsea (cat):{presets.CLASSROOM}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    count, first = SHOWN[slug]
    shown = captions(at, at.main)
    assert len(shown) == count, shown
    assert re.fullmatch(first, shown[0]), shown
    assert len(at.get("download_button")) >= count  # every picture can be kept
    assert any(re.fullmatch(r"Took \d+\.\d s with the classroom \(fast\) settings\.", c.value) for c in at.caption)
    if slug == "gradcam":  # the two classes of the top two, as Predict ranks them
        top = at.session_state["current"][0].top_k(at.session_state["current"][2], 2)
        assert [c.split(" (")[0] for c in shown] == [f"Grad-CAM of {label}" for _, label, _ in top]


def test_the_url_selects_the_step_and_next_changes_the_url():
    at = _tour({"step": "3"})
    assert at.header[0].value == f"3. {STEPS[2].title}"
    at.button(key="tour-next").click().run()
    assert at.query_params["step"] == SLUGS[3]
    assert at.header[0].value == f"4. {STEPS[3].title}"
    at.button(key="tour-previous").click().run()
    at.button(key="tour-previous").click().run()
    assert at.header[0].value == f"2. {STEPS[1].title}"
    at.selectbox(key="tour-jump").set_value(SLUGS.index("style")).run()
    assert at.query_params["step"] == "style"
    assert at.button(key="tour-next").disabled  # the last step


def test_an_unknown_step_opens_the_first():
    at = _tour({"step": "nonsense"})
    assert at.header[0].value == f"1. {STEPS[0].title}"
    assert at.button(key="tour-previous").disabled


def test_presenter_mode_hides_the_sidebar_and_lives_in_the_url():
    at = _tour({"step": "gradcam", "presenter": "1"})
    assert at.toggle(key="tour-presenter").value is True
    styles = [h.proto.body for h in at.get("html")]
    assert PRESENTER_CSS in styles
    assert 'section[data-testid="stSidebar"]' in PRESENTER_CSS and "display: none" in PRESENTER_CSS
    assert not any(c.value.startswith("The lecture in its order") for c in at.caption)  # less to read on a projector
    assert at.header[0].value == f"{SLUGS.index('gradcam') + 1}. Grad-CAM"
    at.toggle(key="tour-presenter").set_value(False).run()
    assert "presenter" not in at.query_params
    assert PRESENTER_CSS not in [h.proto.body for h in at.get("html")]
    at.toggle(key="tour-presenter").set_value(True).run()
    assert at.query_params["presenter"] == "1"


def test_the_paper_preset_is_kept_in_the_url():
    at = _tour({"step": "deepdream", "preset": "paper"})
    assert at.button_group(key="tour-preset").value == presets.PAPER
    at.button_group(key="tour-preset").set_value(presets.CLASSROOM).run()
    assert at.query_params["preset"] == "classroom"
