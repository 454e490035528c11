"""Render: the optimisation loop on a shared network (Lucid's `render`), and its schedules.

`render` maximises an objective over a parameterisation. Each step makes the image, applies the
transforms, normalises it (`model.preprocessing.normalise`), runs the network only as far as the
objective needs, and steps the optimiser on -objective; then `param.constrain()` and the image
operations. Around it: `render_octaves` (an image pyramid: DeepDream), `render_scales` (coarse to
fine: Gatys et al. 2017) and `render_restarting` (undo a step that blows the loss up).

The network is shared by every session and frozen: gradients flow to the image only. Each step
runs inside `model.running()`, which holds the device's queue, and registers the hooks it needs
inside it, removed in `finally`: no other pass can see them, and a waiting session gets its turn
between two steps. `check` names a missing layer, channel or class in one sentence before any work.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from vislib.activations import capture
from vislib.models import Model
from vislib.optvis.objectives import IMAGE, LOGITS, Acts, Objective
from vislib.optvis.optimizers import OPTIMIZERS
from vislib.optvis.params import Param, pixels
from vislib.optvis.transforms import ImageOp, Transform
from vislib.runtime import Progress, report, within


# ---------------------------------------------------------------- pictures in and out

def to_pil(image: torch.Tensor) -> Image.Image:
    """A [N,3,H,W] (its first image) or [3,H,W] 0-1 tensor as a PIL picture (8-bit, as a PNG holds it)."""
    x = image.detach()[0] if image.dim() == 4 else image.detach()
    return TF.to_pil_image(x.clamp(0, 1).mul(255).round().byte().cpu())


def from_pil(picture: Image.Image, device="cpu") -> torch.Tensor:
    """A picture as a [1,3,H,W] 0-1 RGB tensor on `device`, at its own size."""
    return TF.to_dtype(TF.pil_to_tensor(picture.convert("RGB")), torch.float32, scale=True)[None].to(device)


# ---------------------------------------------------------------- checks and progress

def channels(model: Model, layer: str) -> int:
    """How many channels the layer's output has: from the catalogue, else measured by one pass."""
    for info in model.layers():
        if info.name == layer:
            return info.channels
    _, seen = capture(model, torch.zeros(1, 3, model.input_size, model.input_size), [layer])
    return seen[layer].shape[1]


def check(model: Model, objective: Objective) -> None:
    """Raise one sentence (LayerError or ValueError) for a layer, channel or class of `objective`
    that the network does not have."""
    for name in objective.layers:
        if name not in (LOGITS, IMAGE):
            model.module(name)
    for name, index in objective.reads:
        if name == LOGITS:
            count = len(model.labels)
            if not 0 <= index < count:
                raise ValueError(f"Class {index} does not exist; {model.name} has classes 0 to {count - 1}.")
        else:
            count = channels(model, name)
            if not 0 <= index < count:
                raise ValueError(f"{name} has channels 0 to {count - 1}; there is no channel {index}.")


class Stages:
    """The progress of a job made of several runs (octaves, scales, a row of pictures): each run's
    steps are reported as offset + step of the job's `total`; `step` is the job's last reported
    step and `stopped` whether the callback asked to stop, so the job starts no further run."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.step, self.stopped = progress, total, 0, False

    def at(self, offset: int) -> Progress:
        part = within(self.progress, offset, self.total)

        def call(done, total, preview=None, **info):
            self.step = offset + done
            go = report(part, done, total, preview, **info)
            self.stopped = self.stopped or not go
            return go
        return call


def row(progress: Progress | None, items: Sequence, steps: int, make: Callable) -> list[tuple]:
    """`[(item, make(item, progress_of_its_part))]` for each item, `steps` each, until a stop."""
    stages, made = Stages(progress, len(items) * steps), []
    for i, item in enumerate(items):
        made.append((item, make(item, stages.at(i * steps))))
        if stages.stopped:
            break
    return made


# ---------------------------------------------------------------- the loop

class _Enough(Exception):
    """Raised by the last needed hook: the rest of the network is not needed for this objective."""


def render(model: Model, objective: Objective, param: Param, transforms: Sequence[Transform] = (),
           optimizer: str = "adam", steps: int = 200, lr: float = 0.05, seed: int = 0,
           image_ops: Sequence[ImageOp] = (), progress: Progress | None = None, preview_every: int = 10,
           until: Callable[[Acts], bool] | None = None) -> torch.Tensor:
    """Maximise `objective` over `param`; returns the images [N,3,H,W] (0-1, detached).

    `progress` (`vislib.runtime.report`'s protocol) gets every step, with the loss and, every
    `preview_every` steps and at the end, a PIL preview; when it returns False the run stops and
    the image so far is returned. `until(acts)` is checked on each step's activations; when it
    holds, the image that made them is returned (e.g. a fooling image that already fools).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimiser {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}.")
    if image_ops and param.pixels is None:
        raise ValueError("Image operations (decay, blur, clipping) need the plain pixel parameterisation.")
    if any(t.device != model.device for t in param.tensors):
        raise ValueError(f"The image is on {param.tensors[0].device} but the network on {model.device}: "
                         "make it with device=model.device.")
    check(model, objective)
    gen = torch.Generator().manual_seed(seed)
    opt = OPTIMIZERS[optimizer](param.tensors, lr)
    modules = {n: model.module(n) for n in objective.layers if n not in (LOGITS, IMAGE)}
    stop_early = not (LOGITS in objective.layers or not modules or until is not None)
    acts: Acts = {}
    state = {"loss": None, "done": None}

    def keep(name):
        def hook(_module, _inputs, out):
            acts[name] = out
            if stop_early and modules.keys() <= acts.keys():
                raise _Enough
        return hook

    def closure():
        opt.zero_grad(set_to_none=True)
        acts.clear()
        image = param.make_image()
        x = image
        for t in transforms:
            x = t(x, gen)
        try:  # `net`: the network this step's `model.running()` below yields
            acts[LOGITS] = net(model.preprocessing.normalise(x))
        except _Enough:
            pass
        acts[IMAGE] = image
        if until is not None and until(acts):
            state["done"] = image.detach().clone()
            return torch.zeros(())
        loss = -objective(acts)
        loss.backward()
        state["loss"] = loss.detach()
        return loss

    for step in range(1, steps + 1):
        with model.running() as net:
            handles = [module.register_forward_hook(keep(name)) for name, module in modules.items()]
            try:
                opt.step(closure)
            finally:
                for h in handles:
                    h.remove()
        if state["done"] is not None:
            report(progress, step, steps, to_pil(state["done"]))
            return state["done"]
        with torch.no_grad():
            param.constrain()
            for op in image_ops:
                op(step, param.pixels, param.pixels.grad)
        acts.clear()  # free the graph's activations between steps
        show = progress is not None and (step == steps or step % preview_every == 0)
        image = param.make_image().detach() if show else None
        info = {"loss": float(state["loss"])} if progress is not None and state["loss"] is not None else {}
        if not report(progress, step, steps, to_pil(image) if show else None, **info):
            return image if image is not None else param.make_image().detach()
    return param.make_image().detach()


# ---------------------------------------------------------------- schedules

def render_octaves(model: Model, objective: Objective, image: torch.Tensor, octaves: int = 4,
                   octave_scale: float = 1.4, steps_per_octave: int = 10, progress: Progress | None = None,
                   **render_args) -> torch.Tensor:
    """Optimise on an image pyramid, smallest first, carrying the added detail up (DeepDream).

    `image` [1,3,H,W] 0-1. At each octave the picture at that size plus the detail found so far
    (upscaled) is optimised; the detail is what the optimisation added. Returns [1,3,H,W].
    """
    check(model, objective)
    h, w = image.shape[-2:]
    sizes = [(max(1, round(h / octave_scale ** i)), max(1, round(w / octave_scale ** i))) for i in range(octaves)][::-1]
    stages, detail = Stages(progress, octaves * steps_per_octave), None
    for i, size in enumerate(sizes):
        base = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
        detail = torch.zeros_like(base) if detail is None else \
            F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        result = render(model, objective, pixels(init=base + detail, device=image.device), steps=steps_per_octave,
                        progress=stages.at(i * steps_per_octave), **render_args)
        detail = result - base
        if stages.stopped:
            break
    if result.shape[-2:] != (h, w):  # stopped before the last octave
        result = F.interpolate(result, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
    return result


def render_scales(model: Model, make_objective: Callable[[tuple[int, int]], Objective], start: torch.Tensor,
                  scales: int, steps: int, progress: Progress | None = None, **render_args) -> torch.Tensor:
    """Multi-scale optimisation (Gatys et al. 2017, "Controlling perceptual factors"): optimise
    at 1/2**(scales-1) of the size, upsample the result, continue, ..., up to full size; coarse
    scales settle the large structures cheaply. `start` [1,3,H,W] 0-1 at full size;
    `make_objective((H, W))` builds the objective for one scale. Steps are split evenly.
    """
    h, w = start.shape[-2:]
    image, done, stages = start, 0, Stages(progress, steps)
    for i in range(scales):
        factor = 2 ** (scales - 1 - i)
        size = (max(8, h // factor), max(8, w // factor))
        n = steps // scales + (steps % scales if i == scales - 1 else 0)
        image = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        image = render(model, make_objective(size), pixels(init=image, device=model.device),
                       steps=n, progress=stages.at(done), **render_args)
        done += n
        if stages.stopped:
            break
    return image if image.shape[-2:] == (h, w) else \
        F.interpolate(image, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


JUMP = 2.0  # a loss over this many times the best so far is a blow-up, not L-BFGS's usual wobble


def render_restarting(model: Model, objective: Objective, param: Param, steps: int,
                      progress: Progress | None = None, **render_args) -> torch.Tensor:
    """`render`, but a step after which the loss jumps (over JUMP times the best so far) is
    undone: back to the best parameters, on with a fresh optimiser (a fresh L-BFGS history).
    Returns the image of the best parameters seen (the last step's loss is never computed).

    L-BFGS without a line search now and then takes a huge step; on the Fourier image that lands
    in the flat tails of its sigmoid, where no gradient leads back (a flat black and white
    picture, further from the sample than noise); with few layers it is common (bench/README.md,
    textures). Undone steps count towards `steps`.
    """
    best = {"loss": math.inf, "x": [t.detach().clone() for t in param.tensors]}
    done, stopped = 0, False
    while done < steps and not stopped:
        run = {"steps": 0, "jumped": False, "x": [t.detach().clone() for t in param.tensors]}

        def watch(step, _total, preview=None, loss=None, **info):
            nonlocal stopped
            run["steps"] = step
            if loss is not None and loss > JUMP * best["loss"]:
                run["jumped"] = True
                return False
            if loss is not None and loss < best["loss"]:  # the loss is that of the parameters before this step
                best["loss"], best["x"] = loss, run["x"]
            run["x"] = [t.detach().clone() for t in param.tensors]
            loss_info = {} if loss is None else {"loss": loss}
            stopped = not report(progress, done + step, steps, preview, **loss_info, **info)
            return not stopped
        render(model, objective, param, steps=steps - done, progress=watch, **render_args)
        done += run["steps"]
        with torch.no_grad():
            for t, x in zip(param.tensors, best["x"]):
                t.copy_(x)
        if not run["jumped"]:
            break
    return param.make_image().detach()
