"""The lecture as data: one row per step of the guided tour, in the order the lecture tells it.

Each row says what a teacher reads aloud (two or three sentences), which figure of which paper the
step reproduces, which demo runs on the sidebar's picture (a function of ui/tour_demos.py, by name)
and with which settings, and which page shows the technique in full. A new step is one more row.

Settings: `preset` names a table of ui/presets.py (the page's own "classroom (fast)" and "paper"
rows); a step without a page table carries its two rows in `settings`. The tour runs the classroom
row on a CPU and the paper row on a GPU (`presets.default_name`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ui.presets import CLASSROOM, PAPER


@dataclass(frozen=True)
class Step:
    slug: str  # the URL's ?step=
    title: str
    text: str  # read aloud
    figure: str  # "Author et al. YEAR, Fig. N"
    page: str  # the full page (st.page_link)
    demo: str  # a function of ui.tour_demos
    preset: str | None = None  # a table of ui.presets.TABLES
    settings: dict[str, dict[str, object]] = field(default_factory=dict)  # {CLASSROOM: {...}, PAPER: {...}}


STEPS: list[Step] = [
    Step("first-layer", "The first layer",
         "The first layer's filters touch the pixels directly, so we can draw them as little pictures. A trained "
         "network learns oriented edges, stripes and opposing colours here, whatever its task: the same "
         "detectors our own visual cortex starts with.",
         "Krizhevsky, Sutskever & Hinton 2012, Fig. 3", "app_pages/filters.py", "filters"),
    Step("activations", "Activation maps",
         "Each channel of a layer is one detector slid over the whole picture; its map lights up where it "
         "fires. Here are the strongest channels of a middle layer on your picture: they answer to parts and "
         "textures, each at its own place.",
         "Yosinski et al. 2015, Fig. 1", "app_pages/activations.py", "activations"),
    Step("last-layer", "The last layer: neighbours and t-SNE",
         "The last layer before the classifier turns a picture into a vector of numbers. Pictures whose "
         "vectors are close look alike to the network even when their pixels differ; t-SNE squeezes those "
         "vectors onto a page so that neighbours stay neighbours.",
         "Krizhevsky et al. 2012, Fig. 4 (right); Donahue et al. 2014 (DeCAF), Fig. 1",
         "app_pages/neighbours.py", "neighbours",
         settings={CLASSROOM: {"k": 4}, PAPER: {"k": 6}}),
    Step("patches", "Maximally activating patches",
         "Take one channel and show it many pictures: the patches where it fires most tell us what it looks "
         "for. Each patch is exactly what one cell of the layer can see, its receptive field.",
         "Zeiler & Fergus 2014 (arXiv:1311.2901), Fig. 2", "app_pages/patches.py", "patches", preset="patches"),
    Step("unit", "One unit, three ways",
         "What does one unit detect? Make the picture it likes best by gradient ascent, look up the "
         "pictures that excite it, and ask which pixels made it fire. Together they tell a unit's story "
         "better than any one of them.",
         "Olah, Mordvintsev & Schubert 2017 (Distill), 'Why visualize by optimization?'",
         "app_pages/unit.py", "unit",
         # Feature visualisation needs hundreds of steps (minutes on a CPU): the classroom row shows
         # the unit's examples and their guided backprop only.
         settings={CLASSROOM: {"steps": 0}, PAPER: {"steps": 256, "size": None}}),
    Step("occlusion", "Occlusion",
         "Hide a grey square at every place of the picture in turn and watch the class's probability. "
         "Where hiding hurts most is what the network relied on: no gradients, just experiments.",
         "Zeiler & Fergus 2014 (arXiv:1311.2901), Fig. 7", "app_pages/attribution.py", "occlusion",
         settings={CLASSROOM: {"window": 56, "stride": 28}, PAPER: {"window": 16, "stride": 8}}),
    Step("saliency", "Saliency and guided backprop",
         "Which pixels, changed a little, would change the class score most? That is the gradient of the "
         "score with respect to the picture: the saliency map. Guided backprop keeps only the positive "
         "paths backwards through each ReLU and gives sharper, prettier maps.",
         "Simonyan, Vedaldi & Zisserman 2014, Fig. 2; Springenberg et al. 2015, Fig. 1 (backprop, deconvnet, guided)",
         "app_pages/attribution.py", "saliency"),
    Step("gradcam", "Grad-CAM",
         "Weigh the last convolutional layer's maps by how much the class score depends on each, add them "
         "up and keep the positive part: a coarse heat map of where the class is. It is class specific: "
         "ask for another class and it moves.",
         "Selvaraju et al. 2017, Fig. 1", "app_pages/attribution.py", "gradcam"),
    Step("class-images", "Class images",
         "Start from noise and change the pixels, not the weights, to raise one class's score. Without help "
         "the result is noise the network trusts; with small random shifts and a smooth image basis, "
         "recognisable parts of the class appear.",
         "Simonyan, Vedaldi & Zisserman 2014, Fig. 1", "app_pages/class_images.py", "class_images",
         preset="class_images"),
    Step("fooling", "Fooling images",
         "Change every pixel by a few grey levels, in the direction that raises another class. To us the "
         "picture is unchanged; the network now sees an ostrich. Networks are not robust the way we are.",
         "Szegedy et al. 2014 (arXiv:1312.6199), Fig. 5", "app_pages/fooling.py", "fooling", preset="fooling"),
    Step("deepdream", "DeepDream",
         "Whatever a layer sees in the picture, make more of it: gradient ascent on the layer's "
         "activations, on the picture itself, from a small copy up to full size. Shallow layers add "
         "strokes, deep layers eyes and fur.",
         "Mordvintsev, Olah & Tyka 2015, 'Inceptionism' (Google Research blog)", "app_pages/deepdream.py",
         "deepdream", preset="deepdream"),
    Step("inversion", "Feature inversion",
         "What does a layer remember of the picture? Start from noise and change it until the layer's "
         "features match the picture's. Shallow layers keep almost everything; deep layers keep what "
         "matters for the class and forget colours and exact places.",
         "Mahendran & Vedaldi 2015 (CVPR), Fig. 6", "app_pages/inversion.py", "inversion", preset="inversion"),
    Step("texture", "Texture synthesis",
         "A texture is which features occur together, wherever they occur: the correlations (Gram matrices) "
         "of a layer's channels. Matching them from noise grows new texture that is never a copy.",
         "Gatys, Ecker & Bethge 2015, Fig. 2", "app_pages/texture_style.py", "texture", preset="texture"),
    Step("style", "Style transfer",
         "Keep the deeper activations of your picture (its content) and the Gram matrices of a painting "
         "(its style). One optimisation then paints your picture in the painting's style, and no network "
         "was trained for it.",
         "Gatys, Ecker & Bethge 2016 (CVPR), Fig. 3", "app_pages/texture_style.py", "style", preset="style"),
]

SLUGS = [step.slug for step in STEPS]


def index_of(slug: str | None) -> int:
    """The step a URL asks for (?step=gradcam, or ?step=8 counted from 1); the first when unknown."""
    if slug in SLUGS:
        return SLUGS.index(slug)
    if slug is not None and slug.isdigit() and 1 <= int(slug) <= len(STEPS):
        return int(slug) - 1
    return 0
