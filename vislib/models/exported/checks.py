"""What both readers of whole-network files share: one-sentence errors, names from a file shown
safely, and the caps on declared tensor sizes, checked before anything is allocated."""
from __future__ import annotations

import math
import re

from vislib.models.checkpoints import ModelError

MAX_TENSOR_ELEMENTS = 2**28  # one declared tensor: 1 GiB of float32, far above any CNN layer
MAX_TOTAL_ELEMENTS = 2**28   # all weights together (ONNX shape inference fails past 2 GB)


def _brief(err: BaseException) -> str:
    """An error's first line, short, without a full stop that would start a second sentence."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    text = re.split(r"[.!?]\s", text, maxsplit=1)[0].rstrip(".!? ")
    return (text[:160] + "...") if len(text) > 160 else text or type(err).__name__


def _shown(text: str) -> str:
    """A name from a file, fit for a one-line sentence: quoted and escaped when it holds a line
    break, or a full stop that would end the sentence."""
    text = str(text)[:80]
    if text.isprintable() and not re.search(r"[.!?]\s", text):
        return text
    return re.sub(r"([.!?]) ", r"\1\\x20", repr(text))


def _numel(dims) -> int:
    return math.prod(max(int(d), 0) for d in dims)


def _declared(what: str, dims, total: list[int]) -> None:
    """Refuse a tensor by its declared shape, before anything is allocated; `total` sums them."""
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims) or _numel(dims) > MAX_TENSOR_ELEMENTS:
        raise ModelError(f"The file declares {what} of shape {dims}, more than the "
                         f"{MAX_TENSOR_ELEMENTS:,} numbers one tensor may have here.")
    total[0] += _numel(dims)
    if total[0] > MAX_TOTAL_ELEMENTS:
        raise ModelError(f"The file declares more than {MAX_TOTAL_ELEMENTS:,} numbers in all, more than "
                         f"this app loads.")


def _fixed_batch(kind: str, batch: int, shape) -> ModelError:
    c, h, w = (d or s for d, s in zip(shape, (3, 224, 224)))
    x = f"torch.randn(2, {c}, {h}, {w})"
    dynamic = 'dynamic_shapes=({0: torch.export.Dim("batch")},)'
    recipe = (f"torch.export.save(torch.export.export(net, ({x},), {dynamic}), \"net.pt2\") with an example batch "
              f"of 2 (torch.export fixes a batch of 1)" if kind == "pt2" else
              f"torch.onnx.export(net, ({x},), \"net.onnx\", {dynamic}, external_data=False) or, with dynamo=False, "
              f"input_names=[\"x\"], dynamic_axes={{\"x\": {{0: \"batch\"}}}}")
    return ModelError(f"The network was exported for a fixed batch of {batch} picture{'s' * (batch != 1)}, but this "
                      f"app runs batches of every size; export it again with a dynamic batch: {recipe}.")

