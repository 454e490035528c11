"""RISE (Petsiuk, Das & Saenko 2018, "RISE: Randomized Input Sampling for Explanation of Black-box
Models"): show the network the picture through many random masks and credit each pixel with the
average class probability of the masked copies in which it was visible.

Hand-written because no library we use has it (Captum has no RISE; pytorch-grad-cam's CAMs need a
layer, and RISE needs none - it treats the network as a black box). What follows is the authors'
own PyTorch explainer (github.com/eclique/RISE), made to run in batches through the shared network:
N binary grids of s x s cells, each cell kept with probability p, bilinearly upsampled to
(s+1) cells of ceil(H/s) pixels and cropped at a random shift so that the masks' edges fall
anywhere; the map is sum_i P(class | x * M_i) M_i / (N p). As in the authors' code, masking
multiplies the normalised picture, so a hidden pixel becomes the training set's mean colour (0),
the grey that occlusion also uses.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vislib import render
from vislib.attribution.common import finished, prepare
from vislib.models import Model
from vislib.runtime import Progress, batch_size as batch_for, many_passes, report


def _masks(grids: torch.Tensor, shifts: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Smooth masks [B,H,W] from binary grids [B,s,s] and their shifts [B,2] (pixels)."""
    cells = grids.shape[-1]
    cell_h, cell_w = math.ceil(height / cells), math.ceil(width / cells)
    big = F.interpolate(grids[:, None], size=((cells + 1) * cell_h, (cells + 1) * cell_w), mode="bilinear",
                        align_corners=False)[:, 0]
    rows = shifts[:, :1] + torch.arange(height, device=grids.device)  # [B,H]
    cols = shifts[:, 1:] + torch.arange(width, device=grids.device)   # [B,W]
    which = torch.arange(len(grids), device=grids.device)[:, None, None]
    return big[which, rows[:, :, None], cols[:, None, :]]


def _batch(model: Model, batch_size: int | None) -> int:
    """On a CPU 32 masked copies a pass (about a second for efficientnet_lite0 at 224 px on 2 cores,
    the longest a stop waits); on a GPU 256."""
    return batch_size or batch_for(model.device, cpu=32, gpu=256)


def rise(model: Model, x: torch.Tensor, target: int | None = None, masks: int = 4000, cells: int = 7,
         keep: float = 0.5, seed: int = 0, batch_size: int | None = None,
         progress: Progress | None = None) -> torch.Tensor:
    """The RISE map [H,W] of class `target` (None: the top class) for x [1,3,H,W]: `masks` random
    masks (N) of `cells` x `cells` cells (s), each kept with probability `keep` (p); the paper's
    defaults. The same seed gives the same map on a device, whatever the batch size (a CPU
    runs the passes in bfloat16: runtime.many_passes). Reports after
    every batch with the map so far as a preview; stopped early, it returns the map of the masks
    used so far."""
    for name, value in (("masks", masks), ("cells", cells)):
        if value < 1:
            raise ValueError(f"The parameter {name} must be at least 1, not {value}.")
    if not 0 < keep <= 1:
        raise ValueError(f"The parameter keep must be above 0 and at most 1, not {keep}.")
    x, target = prepare(model, x, target)
    _, _, height, width = x.shape
    # All random draws first, from RISE's own generator on the CPU: the map depends on the seed only
    # (not on the batch size or the device), and the global generator is left alone.
    generator = torch.Generator().manual_seed(int(seed))
    grids = (torch.rand(masks, cells, cells, generator=generator) < keep).float()
    shifts = torch.stack([torch.randint(0, math.ceil(height / cells), (masks,), generator=generator),
                          torch.randint(0, math.ceil(width / cells), (masks,), generator=generator)], 1)
    total = torch.zeros(height * width, dtype=torch.float64, device=x.device)
    step, done = _batch(model, batch_size), 0
    with torch.inference_mode():
        while done < masks:
            chunk = slice(done, min(done + step, masks))
            smooth = _masks(grids[chunk].to(x.device), shifts[chunk].to(x.device), height, width)
            masked = (x * smooth[:, None]).contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout
            with model.running() as net, many_passes(x.device):  # per batch: other jobs' short passes go between
                probs = net(masked).float().softmax(1)[:, target]
            total += probs.double() @ smooth.reshape(len(probs), -1).double()
            done = chunk.stop
            preview = None if progress is None else render.colorize(
                (total / (done * keep)).view(height, width).cpu(), cmap="jet")
            if not report(progress, done, masks, preview=preview):
                break
    return finished((total / (done * keep)).view(height, width))


__all__ = ["rise"]
