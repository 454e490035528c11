"""What one unit (a channel of a layer) detects: its feature visualisation, its dataset examples
with guided backprop inside each, its activations over a collection and its effect on the class
scores."""
from vislib.units.examples import examples
from vislib.units.guided import Example, from_atlas, unit_gradients
from vislib.atlas.survey import survey, survey_if_done
from vislib.units.effects import class_effects
from vislib.units.visualize import (DEFAULT_PRESET, PRESETS, canvas_size, feature_visualization,
                                    feature_visualization_set, feature_visualizations)

__all__ = ["DEFAULT_PRESET", "Example", "PRESETS", "canvas_size", "class_effects", "examples", "feature_visualization",
           "feature_visualization_set", "feature_visualizations", "from_atlas", "survey", "survey_if_done",
           "unit_gradients"]
