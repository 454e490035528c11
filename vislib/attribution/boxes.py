"""Occluded copies held as boxes: each copy of an activation differs from the clean one only inside
a box, and the incremental executor reads and pastes those boxes for a whole batch of copies at once
(on a CPU slice by slice, on a GPU with index tensors: a few launches per layer whatever the batch)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Box:
    """Occluded copies of one activation [1,C,H,W] that equal the clean one outside a box each:
    copy b differs only inside rows r[b]:r[b]+h, columns c[b]:c[b]+w, where it holds values[b]."""
    r: torch.Tensor
    c: torch.Tensor
    values: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        return self.values.shape[-2], self.values.shape[-1]


def by_index(device: torch.device) -> bool:
    """Whether crops are read with index tensors, a few launches per layer whatever the batch (on
    a GPU), or by slicing copy by copy (on a CPU, where that is several times faster)."""
    return device.type != "cpu"


def gather(t: torch.Tensor, r, c, h, w) -> torch.Tensor:
    """Crops t[:, r[b]:r[b]+h, c[b]:c[b]+w] of a [C,H,W] tensor, stacked as [B,C,h,w]; r and c
    are CPU tensors (the geometry stays on the CPU, so that it never waits for a GPU)."""
    if not by_index(t.device):
        return torch.stack([t[:, i:i + h, j:j + w] for i, j in zip(r.tolist(), c.tolist())])
    rows, cols = (_on(v[:, None] + torch.arange(n), t.device) for v, n in ((r, h), (c, w)))
    channels = torch.arange(t.shape[0], device=t.device)
    return t[channels[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]


def paste(out: torch.Tensor, box: Box, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """out [B,C,h,w], the crops of a map at rows r, columns c, with each copy's box laid over it."""
    if by_index(out.device):
        return _paste_by_index(out, box.values, box.r - r, box.c - c)
    (bh, bw), (h, w) = box.size, out.shape[-2:]
    # slicing copy by copy: PyTorch's gather by index tensors is several times slower on a CPU
    for b, (r0, c0, br, bc) in enumerate(zip(r.tolist(), c.tolist(), box.r.tolist(), box.c.tolist())):
        top, bottom = max(r0, br), min(r0 + h, br + bh)
        left, right = max(c0, bc), min(c0 + w, bc + bw)
        if top < bottom and left < right:
            out[b, :, top - r0:bottom - r0, left - c0:right - c0] = \
                box.values[b, :, top - br:bottom - br, left - bc:right - bc]
    return out


def _paste_by_index(out: torch.Tensor, values: torch.Tensor, dr: torch.Tensor, dc: torch.Tensor) -> torch.Tensor:
    """out [B,C,h,w] with values [B,C,bh,bw] laid over it, copy b's box starting dr[b] rows and
    dc[b] columns from out's corner (CPU tensors; negative where the box starts before out)."""
    (bh, bw), (h, w) = values.shape[-2:], out.shape[-2:]
    i, j = dr.neg()[:, None] + torch.arange(h), dc.neg()[:, None] + torch.arange(w)  # box-relative
    inside = ((i >= 0) & (i < bh))[:, None, :, None] & ((j >= 0) & (j < bw))[:, None, None, :]
    copies = torch.arange(len(values), device=out.device)[:, None, None, None]
    channels = torch.arange(values.shape[1], device=out.device)[None, :, None, None]
    i, j = i.clamp(0, bh - 1)[:, None, :, None], j.clamp(0, bw - 1)[:, None, None, :]
    laid = values[copies, channels, _on(i, out.device), _on(j, out.device)]
    return torch.where(_on(inside, out.device), laid, out)


def _on(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor (indices, masks) on `device`, without waiting for the GPU's queue."""
    if device.type != "cuda":
        return t.to(device)
    # A plain copy from pageable memory waits for every kernel queued before it. From pinned memory
    # with non_blocking it does not, and PyTorch's pinned-memory cache keeps the source until the
    # copy has run.
    return t.pin_memory().to(device, non_blocking=True)
