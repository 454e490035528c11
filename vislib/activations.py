"""What a layer computes on an image: first-layer filters, their responses, activation maps."""
from __future__ import annotations

import torch
from PIL import Image

from vislib import render
from vislib.models import Model


def capture(model: Model, x: torch.Tensor, layers: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and the outputs of the named layers for a preprocessed batch, all on the CPU.

    Hooks live for this call only. Outputs are cloned because a following in-place ReLU
    would otherwise rewrite them after the hook has seen them.
    """
    modules = {n: model.module(n) for n in layers}
    seen: dict[str, torch.Tensor] = {}

    def keep(name):
        return lambda _m, _i, out: seen.__setitem__(name, out.detach().float().cpu().clone())

    with model.running() as net:
        handles = [modules[n].register_forward_hook(keep(n)) for n in layers]
        try:
            with torch.inference_mode():
                logits = net(x.to(model.device)).float().cpu()
        finally:
            for h in handles:
                h.remove()
    return logits, seen


def activation_maps(model: Model, image: Image.Image, layer: str) -> torch.Tensor:
    """The layer's output on one image, [C,H,W]."""
    _, seen = capture(model, model.preprocess(image)[None], [layer])
    return seen[layer][0]


def channel_order(maps) -> list[int]:
    """Channels of a [C,H,W] tensor or array sorted by mean activation, strongest first."""
    return torch.as_tensor(maps).flatten(1).mean(1).argsort(descending=True).tolist()


def first_layer_weights(model: Model) -> torch.Tensor:
    """The first convolution's kernels, [C_out, C_in, k, k], on the CPU."""
    return model.module(model.first_conv).weight.detach().float().cpu()


def filter_tiles(weights: torch.Tensor, shared_scale: bool = False) -> list[Image.Image]:
    """Each kernel as a small picture: RGB for 3 input channels, grey otherwise.

    Per filter, each kernel is stretched over its own range (shows every pattern);
    with `shared_scale`, one range for all (shows which filters are strong).
    """
    w = weights if weights.shape[1] == 3 else weights.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    lo, hi = (float(w.min()), float(w.max())) if shared_scale else (None, None)
    return [Image.fromarray((render.normalise(k.permute(1, 2, 0), lo, hi) * 255).round().astype("uint8"))
            for k in w]


def filter_responses(model: Model, image: Image.Image) -> torch.Tensor:
    """The first convolution applied to the image (before normalisation and activation), [C,H,W]."""
    conv = model.module(model.first_conv)
    with torch.inference_mode(), model.running():  # another job may have hooked this convolution
        return conv(model.preprocess(image)[None].to(model.device))[0].float().cpu()
