"""The tour's one-click demos: each runs one technique on a picture with the step's settings.

No Streamlit in here, so bench/tour.py times exactly what the tour runs. A demo is
`demo(model, picture, settings, progress) -> Shown`; it calls the vislib function the full page
calls, and reports progress through the vislib protocol where that function does.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from ui import presets
from vislib import activations, attribution, render, synthesis, units
from vislib.data import collections, embedding, features, patches
from vislib.runtime import report

OSTRICH = 9  # ImageNet's class 9: the class Szegedy et al. turned every picture into


@dataclass
class Shown:
    """What a demo made: pictures with captions, and sentences of numbers."""
    images: list[tuple[Image.Image, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    link: dict[str, str] = field(default_factory=dict)  # query parameters for the full page's link


def _x(model, picture):
    return model.preprocess(picture)[None]


def _view(model, picture) -> Image.Image:
    return model.to_image(model.preprocess(picture))


def _done(progress) -> None:
    report(progress, 1, 1)


def _middle(model, fraction: float = 0.5) -> str:
    layers = model.layers()
    return layers[min(len(layers) - 1, int(len(layers) * fraction))].name


def _strongest_channel(model, picture, layer: str) -> int:
    return activations.channel_order(activations.activation_maps(model, picture, layer))[0]


@functools.lru_cache(maxsize=1)
def _samples():
    # The pictures that ship with the packages: small enough to search in seconds on a CPU.
    return collections.open_collection("samples")


def filters(model, picture, settings, progress=None) -> Shown:
    weights = activations.first_layer_weights(model)
    tiles = [render.enlarge(t, 40) for t in activations.filter_tiles(weights)]
    cols = min(len(tiles), 8)
    _done(progress)
    return Shown([(render.grid(tiles, cols), f"The {len(tiles)} filters of {model.first_conv}, "
                   f"{weights.shape[-1]} x {weights.shape[-1]} pixels each")],
                 [f"{len(tiles)} filters over {weights.shape[1]} colour channel(s)."])


def activations_demo(model, picture, settings, progress=None) -> Shown:
    layer = _middle(model)
    maps = activations.activation_maps(model, picture, layer)
    order = activations.channel_order(maps)[:16]
    tiles = [render.enlarge(render.colorize(maps[c].numpy()), 72) for c in order]
    best = order[0]
    _done(progress)
    return Shown([(render.grid(tiles, 8), f"The 16 strongest of {maps.shape[0]} channels of {layer}"),
                  (render.overlay(_view(model, picture), maps[best].numpy()), f"Channel {best} over the picture")],
                 [f"{layer}: {maps.shape[0]} maps of {maps.shape[1]} x {maps.shape[2]} cells."],
                 {"layer": layer, "channel": str(best)})


def _picture_features(model, picture) -> np.ndarray:
    pooled = features.layer_output(model, _x(model, picture), None,
                                   lambda t: (t.mean((2, 3)) if t.dim() == 4 else t.flatten(1)).cpu())
    return pooled[0].numpy()


def _tsne_sheet(points: np.ndarray, tiles: list[Image.Image], size: int = 420, tile: int = 56) -> Image.Image:
    """The t-SNE map drawn with each picture at its point (the last one, the query, framed in red)."""
    p = points - points.min(0)
    p = p / max(float(p.max()), 1e-12) * (size - tile)
    sheet = Image.new("RGB", (size, size), (255, 255, 255))
    for i, ((x, y), t) in enumerate(zip(p, tiles)):
        t = ImageOps.fit(t, (tile, tile))
        if i == len(tiles) - 1:
            t = ImageOps.expand(t.resize((tile - 8, tile - 8)), 4, (230, 30, 30))
        sheet.paste(t, (int(x), int(size - tile - y)))
    return sheet


def neighbours(model, picture, settings, progress=None) -> Shown:
    pictures = _samples()
    found = features.extract(model, pictures, progress=progress)
    mine = _picture_features(model, picture)
    k = min(int(settings.get("k", 4)), len(pictures))
    near = embedding.nearest(found, mine, k)
    dist = embedding.distances(found, mine)
    strip = render.grid([features.thumbnail(pictures[int(i)][0], 96) for i in near], k)
    both = np.vstack([found, mine[None]])
    points = embedding.tsne(both, seed=0, perplexity=max(1.0, (len(both) - 1) / 3))
    tiles = [pictures[i][0] for i in range(len(pictures))] + [picture]
    return Shown([(strip, f"The {k} nearest of {len(pictures)} sample pictures in feature space"),
                  (_tsne_sheet(points, tiles), "t-SNE of their feature vectors (your picture framed in red)")],
                 ["Cosine distances: " + ", ".join(f"{dist[int(i)]:.3f}" for i in near) + "."])


def patches_demo(model, picture, settings, progress=None) -> Shown:
    layer = _middle(model, 0.6)
    channel = _strongest_channel(model, picture, layer)
    pictures = _samples()
    k = min(int(settings.get("k", 9)), len(pictures))
    state = patches.cached_state(model, layer, pictures, k, progress, True)
    found = patches.patches(state, model, pictures, channel)
    rf = model.layer(layer).receptive_field
    tiles = [ImageOps.pad(p.image, (max(rf, *p.image.size),) * 2, color=(128, 128, 128)).resize((80, 80))
             for p in found]
    return Shown([(render.grid(tiles, min(len(tiles), 9)), f"Top {len(found)} patches of channel {channel} of {layer} "
                   f"(receptive field {rf} px)")],
                 ["Activations: " + ", ".join(f"{p.activation:.2f}" for p in found) + "."],
                 {"layer": layer, "channel": str(channel)})


def unit(model, picture, settings, progress=None) -> Shown:
    """The unit strongest on the picture: its top sample pictures with guided backprop inside each, and
    with `steps` > 0 (the paper's settings, for a GPU) the picture it likes best."""
    layer = _middle(model, 0.6)
    channel = _strongest_channel(model, picture, layer)
    pictures = _samples()
    found = units.examples(model, layer, channel, pictures, k=min(9, len(pictures)), guided=True)
    tile = 80
    shown = [(render.grid([p.image.resize((tile, tile)) for p in found], len(found)),
              f"Top {len(found)} sample pictures of channel {channel} of {layer}: the cell's view"),
             (render.grid([p.guided.resize((tile, tile)) for p in found], len(found)),
              "Guided backprop inside each: the pixels that made it fire")]
    if settings.get("steps"):
        size = settings.get("size") or units.canvas_size(model)
        made = units.feature_visualization(model, layer, channel, steps=int(settings["steps"]), size=size,
                                           progress=progress)[0]
        shown.insert(0, (made, f"The picture channel {channel} of {layer} likes best ({settings['steps']} steps)"))
    return Shown(shown, ["Activations: " + ", ".join(f"{p.activation:.2f}" for p in found) + "."],
                 {"layer": layer, "channel": str(channel)})


def _target_line(model, target: int) -> str:
    return f"Explaining class {target}: {model.labels[target]}."


def occlusion(model, picture, settings, progress=None) -> Shown:
    x = _x(model, picture)
    target = model.top_k(picture, 1)[0][0]
    # The settings are for a 224 px input; a smaller network gets a square of the same share of the picture.
    scale = model.input_size / 224
    window, stride = max(2, round(settings["window"] * scale)), max(1, round(settings["stride"] * scale))
    amap = attribution.occlusion(model, x, target, window=window, stride=stride, progress=progress)
    return Shown([(render.overlay(_view(model, picture), amap.numpy()),
                   f"Drop in the class's probability under a {window} px grey square")],
                 [_target_line(model, target), f"Largest drop {float(amap.max()):.3f}."])


def saliency(model, picture, settings, progress=None) -> Shown:
    x = _x(model, picture)
    target = model.top_k(picture, 1)[0][0]
    plain = attribution.attribute(model, x, "saliency", target)
    report(progress, 1, 2)
    guided = attribution.attribute(model, x, "guided_backprop", target)
    report(progress, 2, 2)
    return Shown([(render.colorize(plain.abs().numpy(), "gray"), "Saliency: |gradient|"),
                  (render.colorize(guided.numpy(), "gray"), "Guided backprop")],
                 [_target_line(model, target)])


def gradcam(model, picture, settings, progress=None) -> Shown:
    x = _x(model, picture)
    top = model.top_k(picture, 2)
    shown = []
    for i, (target, label, p) in enumerate(top):
        cam = attribution.attribute(model, x, "gradcam", target)
        shown.append((render.overlay(_view(model, picture), cam.numpy()), f"Grad-CAM of {label} ({p:.1%})"))
        report(progress, i + 1, len(top))
    return Shown(shown, [f"Layer {attribution.gradcam_layer(model)}; the same picture, two classes."])


def class_images(model, picture, settings, progress=None) -> Shown:
    target = model.top_k(picture, 1)[0][0]
    made = synthesis.class_visualization(model, target, steps=int(settings["steps"]), size=int(settings["size"]),
                                         progress=progress)
    top = synthesis.top_classes(model, made, 1)[0]
    return Shown([(made, f"{model.labels[target]}, {settings['steps']} steps")],
                 [f"The network calls it {top[1]} ({top[2]:.1%})."])


def fooling(model, picture, settings, progress=None) -> Shown:
    n = len(model.labels)
    top = model.top_k(picture, 1)[0][0]
    target = OSTRICH if n > OSTRICH and top != OSTRICH else (top + 1) % n
    made, info = synthesis.fooling_image(model, picture, target, eps=settings["eps"] / 255,
                                         max_steps=int(settings["max_steps"]), progress=progress)
    original = synthesis.network_picture(model, picture)
    verdict = "fools the network" if info["fooled"] else "does not fool it yet"
    return Shown([(original, "Original"), (made, f"Changed by at most {settings['eps']}/255"),
                  (synthesis.difference(original, made), "Difference, amplified")],
                 [f"After {info['steps']} steps it {verdict}: {model.labels[target]} {info['target_before']:.3f} -> "
                  f"{info['target_after']:.3f}."])


def deepdream(model, picture, settings, progress=None) -> Shown:
    layer = _middle(model)
    made = synthesis.deepdream(model, picture, layer, octaves=int(settings["octaves"]),
                               steps_per_octave=int(settings["steps_per_octave"]), size=int(settings["size"]),
                               octave_scale=float(settings["octave_scale"]), progress=progress)
    return Shown([(made, f"Dreamed on {layer}")], [f"{settings['octaves']} octaves of {settings['steps_per_octave']} "
                                                   f"steps at {settings['size']} px."], {"layer": layer})


def inversion(model, picture, settings, progress=None) -> Shown:
    layer = _middle(model, 1 / 3)
    made = synthesis.invert(model, picture, layer, steps=int(settings["steps"]), tv=float(settings["tv"]),
                            progress=progress)
    return Shown([(_view(model, picture), "What the network sees"), (made, f"Reconstructed from {layer}")],
                 [f"{settings['steps']} steps from noise."])


def _sample_texture(name: str) -> Image.Image:
    return synthesis.samples.texture_samples()[name]()


def texture(model, picture, settings, progress=None) -> Shown:
    sample = _sample_texture("brick")
    made = synthesis.texture(model, sample, size=int(settings["size"]), steps=int(settings["steps"]),
                             progress=progress)
    return Shown([(sample.resize((160, 160)), "The sample"), (made, "Grown from noise")],
                 [f"{settings['steps']} L-BFGS steps at {settings['size']} px."])


def style(model, picture, settings, progress=None) -> Shown:
    painting = _sample_texture("mosaic")
    made = synthesis.style_transfer(model, picture, painting, steps=int(settings["steps"]),
                                    size=int(settings["size"]), progress=progress)
    return Shown([(painting.resize((160, 160)), "The style"), (made, "Your picture in that style")],
                 [f"{settings['steps']} L-BFGS steps at {settings['size']} px."])


DEMOS: dict[str, Callable[..., Shown]] = {
    "filters": filters, "activations": activations_demo, "neighbours": neighbours, "patches": patches_demo,
    "unit": unit, "occlusion": occlusion, "saliency": saliency, "gradcam": gradcam, "class_images": class_images,
    "fooling": fooling, "deepdream": deepdream, "inversion": inversion, "texture": texture, "style": style,
}


def settings_for(step, name: str) -> dict:
    """The step's settings of preset `name` (classroom or paper)."""
    if step.preset:
        return presets.values(step.preset, name)
    return dict(step.settings.get(name, {}))


def run(step, model, picture, name: str, progress=None) -> Shown:
    """The step's demo on the picture with preset `name`."""
    return DEMOS[step.demo](model, picture, settings_for(step, name), progress)
