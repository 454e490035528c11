"""ui.presets: each page's classroom and paper settings, applied to its widgets and kept in the URL."""
import pytest
from streamlit.testing.v1 import AppTest

from ui import presets
from vislib import synthesis


def _page(page, params=None):
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page(f"app_pages/{page}.py")
    for name, value in (params or {}).items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_row_names_the_same_settings_and_values_fit_the_functions():
    import inspect
    functions = {"class_images": synthesis.class_visualization, "fooling": synthesis.fooling_image,
                 "deepdream": synthesis.deepdream, "inversion": synthesis.invert, "texture": synthesis.texture,
                 "style": synthesis.style_transfer}
    for page, table in presets.TABLES.items():
        assert set(table.rows) == set(presets.NAMES), page
        assert set(table.rows[presets.CLASSROOM]) == set(table.rows[presets.PAPER]) == set(table.keys), page
        if page in functions:  # the tour calls the function with these names (eps is in grey levels there)
            accepted = set(inspect.signature(functions[page]).parameters)
            assert set(table.keys) - {"eps"} <= accepted, page
    assert presets.values("deepdream", presets.PAPER) == {"octaves": 4, "steps_per_octave": 10, "size": 512,
                                                         "octave_scale": 1.4}
    assert presets.widget_values("class_images", presets.CLASSROOM) == {"classvis-steps": 40, "classvis-size": 128}
    with pytest.raises(ValueError, match="Unknown preset 'fast'; choose one of: classroom \\(fast\\), paper."):
        presets.values("deepdream", "fast")


def test_choosing_a_preset_sets_the_widgets_and_the_url():
    at = _page("class_images")
    at.button_group(key="preset-class_images").set_value(presets.PAPER).run()
    assert not at.exception
    assert at.slider(key="classvis-steps").value == 200
    assert at.select_slider(key="classvis-size").value == 224
    assert at.query_params["preset"] == "paper"
    assert at.query_params["classvis-steps"] == "200" and at.query_params["classvis-size"] == "224"
    at.button_group(key="preset-class_images").set_value(presets.CLASSROOM).run()
    assert at.slider(key="classvis-steps").value == 40
    assert at.select_slider(key="classvis-size").value == 128
    assert at.query_params["preset"] == "classroom"


def test_a_moved_widget_goes_into_the_url():
    at = _page("deepdream")
    at.slider(key="dream-steps").set_value(7).run()
    assert at.query_params["dream-steps"] == "7"


def test_a_shared_link_brings_the_settings_back():
    at = _page("deepdream", {"preset": "classroom", "dream-steps": "7"})
    assert at.slider(key="dream-octaves").value == 3  # from the preset
    assert at.select_slider(key="dream-size").value == 192
    assert at.slider(key="dream-steps").value == 7  # the single value wins over the preset's 5
    assert at.button_group(key="preset-deepdream").value == presets.CLASSROOM


def test_a_hand_edited_value_that_is_not_a_number_is_ignored():
    at = _page("inversion", {"invert-steps": "many"})
    assert at.slider(key="invert-steps").value in (100, 200)  # the page's own default (CPU or GPU)


def test_texture_and_style_have_a_picker_each():
    at = _page("texture_style")
    at.button_group(key="preset-style").set_value(presets.CLASSROOM).run()
    assert at.select_slider(key="sty-size").value == 96 and at.slider(key="sty-steps").value == 20
    assert at.slider(key="tex-steps").value == 60  # the other tab keeps its own settings
