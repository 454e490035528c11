"""Guided backpropagation of a unit inside each of its examples (Springenberg et al. 2015; Zeiler and
Fergus 2014's "intermediate features"): which pixels of the patch made it fire."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from vislib.attribution.common import explaining
from vislib.attribution.gradients import Guided
from vislib.data.collections import Collection
from vislib.data.patches import Patch
from vislib.models import Model


@dataclass(frozen=True)
class Example(Patch):
    guided: Image.Image | None = None  # guided backprop of the unit at the cell, over the patch


class _Reached(Exception):
    """Raised once the unit's layer has run: the gradient needs nothing after it."""


def unit_gradients(model: Model, x: torch.Tensor, layer: str, channel: int, cells: list[tuple[int, int]],
                   guided: bool = True) -> torch.Tensor:
    """d(unit at cells[i]) / d(picture i) for a batch x [N,3,H,W]: [N,3,H,W] on the CPU.

    Guided (every nonlinearity passes only positive gradients back) unless `guided=False`. The
    pictures do not interact (the network is in eval mode), so one backward pass of the sum gives
    each picture its own gradient; the pass stops at the unit's layer."""
    module = model.module(layer)
    seen = []

    def keep(_m, _i, out):
        seen.append(out)
        raise _Reached

    x = x.detach().to(model.device, torch.float32).requires_grad_(True)
    with explaining(model) as net, (Guided() if guided else contextlib.nullcontext()):
        handle = module.register_forward_hook(keep)
        try:
            net(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        out = seen[0]
        rows = torch.tensor([r for r, _ in cells], device=out.device)
        cols = torch.tensor([c for _, c in cells], device=out.device)
        out[torch.arange(len(cells), device=out.device), channel, rows, cols].sum().backward()
    return x.grad.detach().float().cpu()


def gradient_picture(gradient: torch.Tensor) -> Image.Image:
    """A [3,h,w] gradient as a picture: signed values around grey, so positive and negative evidence
    both show, scaled by the 99.5th percentile of their size (a few extreme pixels would otherwise
    leave the rest flat grey)."""
    g = gradient.numpy().transpose(1, 2, 0)
    top = float(np.percentile(np.abs(g), 99.5)) or float(np.abs(g).max()) or 1.0
    return Image.fromarray(np.clip((0.5 + 0.5 * g / top) * 255, 0, 255).round().astype(np.uint8))


def from_atlas(model: Model, source, layer: str, channel: int, collection: Collection,
               guided: bool = True) -> list[Example]:
    """The examples an atlas lists for the unit, cut from the collection (with guided views), or
    read from the atlas when its build stored them (then no picture is decoded)."""
    info = model.layer(layer)
    listed = list(zip(source.examples(layer, channel), source.cells(layer, channel)))
    stored = getattr(source, "example_pictures", lambda *_: None)(layer, channel) if guided else None
    if stored is not None and len(stored) == len(listed):
        return [Example(index, info.box(*cell, model.input_size), activation, patch, cell, guided=view)
                for ((index, activation), cell), (patch, view) in zip(listed, stored)]
    inputs = [model.preprocess(collection[index][0]) for (index, _), _ in listed]  # each picture decoded once
    found = []
    for ((index, activation), cell), x in zip(listed, inputs):
        box = info.box(*cell, model.input_size)
        found.append(Patch(index, box, activation, model.to_image(x).crop(box), cell))
    if not guided or not found:
        return [Example(**vars(p)) for p in found]
    grads = unit_gradients(model, torch.stack(inputs), layer, channel, [p.cell for p in found])
    out = []
    for p, g in zip(found, grads):
        x0, y0, x1, y1 = p.box
        out.append(Example(**vars(p), guided=gradient_picture(g[:, y0:y1, x0:x1])))
    return out


def overlay(example: Example, alpha: float = 0.6) -> Image.Image:
    """The guided view blended over the patch, for a quick look at both at once."""
    return Image.blend(example.image.convert("RGB"), example.guided, alpha) if example.guided else example.image
