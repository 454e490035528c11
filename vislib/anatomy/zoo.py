"""The zoo compared: top-1 accuracy on labelled ImageNet pictures against multiply-adds, with the
number of parameters as the third number (the chart of Canziani et al. 2016, "An Analysis of Deep
Neural Network Models for Practical Applications").

The labels come from the file names: a picture named `n01440764_tench.jpg` belongs to the class
whose WordNet id is n01440764, and ImageNet's class ids are the 1000 WordNet ids sorted (timm's
`ImageNetInfo` holds that list). Accuracy is measured through `vislib.data.predict.classify`,
the same path as `vislib predict` and bench/predict_accuracy.py.
"""
from __future__ import annotations

import re
from pathlib import Path

from vislib.anatomy.table import anatomy, totals
from vislib.data.predict import classify
from vislib.images import SUPPORTED_TYPES
from vislib.models import Model
from vislib.runtime import report

_WNID = re.compile(r"^(n\d{8})")


def imagenet_truth(folder) -> list[tuple[Path, int]]:
    """(picture, ImageNet class id) for every picture in `folder` whose name starts with a WordNet
    id, sorted by name; ValueError (one sentence) when there are none."""
    from timm.data import ImageNetInfo
    info = ImageNetInfo()
    index = {info.index_to_label_name(i): i for i in range(info.num_classes())}
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"There is no folder named {folder}.")
    suffixes = {f".{t}" for t in SUPPORTED_TYPES}
    found = []
    for path in sorted(folder.iterdir()):
        m = _WNID.match(path.name)
        if m and m.group(1) in index and path.suffix.lower() in suffixes and path.is_file():
            found.append((path, index[m.group(1)]))
    if not found:
        raise ValueError(f"No picture in {folder} is named after its WordNet id (like n01440764_tench.jpg).")
    return found


def top1(model: Model, labelled: list[tuple[Path, int]], batch_size: int = 16, progress=None) -> tuple[float, int]:
    """(top-1 accuracy, pictures counted) of the model over (picture, class id) pairs; stops early
    when `progress` says so and returns the accuracy over the pictures done by then."""
    right = done = 0
    truth = {str(p): c for p, c in labelled}
    for path, result in classify(model, [str(p) for p, _ in labelled], top=1, batch_size=batch_size):
        done += 1
        if not isinstance(result, str):
            right += result[0][0] == truth[str(path)]
        if not report(progress, done, len(labelled), accuracy=right / done):
            break
    return (right / done if done else 0.0), done


def zoo_point(model: Model, labelled: list[tuple[Path, int]], batch_size: int = 16, progress=None) -> dict:
    """One bubble of the chart: {"model", "top1", "n", "macs", "params"}."""
    accuracy, n = top1(model, labelled, batch_size, progress)
    sums = totals(anatomy(model))
    return {"model": model.name, "top1": accuracy, "n": n, "macs": sums["macs"], "params": sums["params"]}
