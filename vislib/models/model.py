"""The Model every page and function works with, and the Preprocessing it carries.

A Model is a loaded network plus what it takes to use it: its labels, how a picture becomes its
input, its layer catalogue and the names of its first convolution and classifier. The network is
shared by every session, so it runs only inside `Model.running()`.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from vislib.models.checkpoints import ModelError
from vislib.models.layers import LayerError, LayerInfo, measure
from vislib.runtime import queue


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side, centre-crop, normalise: what every ImageNet recipe does."""
    input_size: int
    resize_size: int
    interpolation: str  # "bicubic" or "bilinear"
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        mode = InterpolationMode(self.interpolation)
        image = TF.resize(image.convert("RGB"), self.resize_size, interpolation=mode, antialias=True)
        image = TF.center_crop(image, self.input_size)
        return TF.normalize(TF.pil_to_tensor(image).float().div_(255), self.mean, self.std)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """0-1 RGB pixels [..., 3, H, W] (any device) -> the network's input."""
        return (pixels - self._stat(self.mean, pixels)) / self._stat(self.std, pixels)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input [..., 3, H, W] -> 0-1 RGB pixels (not clamped)."""
        return x * self._stat(self.std, x) + self._stat(self.mean, x)

    @staticmethod
    def _stat(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, 1, 1)


@dataclass(eq=False)
class Model:
    net: nn.Module
    name: str
    labels: list[str]
    preprocessing: Preprocessing
    device: torch.device
    arch: str
    first_conv: str   # module name of the first convolution
    classifier: str   # state-dict key of the last layer's weight
    _catalogue: list[tuple[str, str]] = field(repr=False, default_factory=list)
    _layers: list[LayerInfo] | None = field(repr=False, default=None)

    @property
    def input_size(self) -> int:
        return self.preprocessing.input_size

    @property
    def mean(self) -> tuple[float, ...]:
        return self.preprocessing.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.preprocessing.std

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.preprocessing(image)

    def to_image(self, x: torch.Tensor) -> Image.Image:
        """Undo the normalisation of a [3,H,W] tensor and return the picture."""
        pixels = self.preprocessing.denormalise(x.detach()).clamp(0, 1).mul(255).round().byte().cpu()
        return TF.to_pil_image(pixels)

    @contextlib.contextmanager
    def running(self) -> Iterator[nn.Module]:
        """The one way to run the network: holds its device's queue for the block and yields the net.

        The network is shared by every session; hooks registered inside the block see only this
        block's passes, because no other thread can run the network meanwhile (the network itself
        refuses a pass from a thread that holds no queue: `vislib.runtime.queue.guard`). Re-entrant.
        """
        with queue.device_lock(self.device):
            yield self.net

    def layers(self) -> list[LayerInfo]:
        if self._layers is None:
            with self.running() as net:
                self._layers = measure(net, self.input_size, self._catalogue, device=self.device)
        return self._layers

    def require(self, *needs: str) -> None:
        """ModelError (one sentence) if the network lacks what a technique needs: "layers" (a layer
        whose output is a map [channels, height, width]), "first_conv" (a convolution on the
        picture), "classifier" (a last layer whose input is the penultimate feature vector)."""
        for need in needs:
            if need == "layers" and not self.layers():
                raise ModelError(f"{self.name} has no layer that keeps the picture's layout [channels, height, "
                                 f"width] (a transformer's tokens, say), so this technique cannot apply to it.")
            if need == "first_conv" and not self.first_conv:
                raise ModelError(f"{self.name} has no convolution on the picture, so it has no filters to show.")
            if need == "classifier" and not self.classifier:
                raise ModelError(f"{self.name}'s last layer (a weight with one row per class) was not found, so its "
                                 f"penultimate features cannot be read.")
            if need not in ("layers", "first_conv", "classifier"):
                raise ValueError(f"unknown need {need!r}")

    def layer(self, name: str) -> LayerInfo:
        """The catalogue's entry for a layer; LayerError if the catalogue has no such layer."""
        for info in self.layers():
            if info.name == name:
                return info
        raise LayerError(f"{self.name} has no layer named {name!r} in its catalogue; its layers are "
                         f"{self._listing()}.")

    def module(self, name: str) -> nn.Module:
        """The module `name` of the network (any key of `net.named_modules()`); LayerError if none."""
        found = dict(self.net.named_modules()).get(name) if name else None
        if found is None:
            raise LayerError(f"{self.name} has no layer named {name!r}; its layers are {self._listing()}.")
        return found

    def _listing(self) -> str:
        names = [i.name for i in self.layers()]
        return ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:6])}, ..., {', '.join(names[-3:])}"

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """Softmax class probabilities for a preprocessed batch [N,3,S,S], on the CPU."""
        with torch.inference_mode(), self.running() as net:
            return net(batch.to(self.device)).float().softmax(dim=1).cpu()

    def top_k(self, image: Image.Image, k: int = 5) -> list[tuple[int, str, float]]:
        return self.ranked(self.probabilities(self.preprocess(image)[None])[0], k)

    def ranked(self, probs: torch.Tensor, k: int = 5) -> list[tuple[int, str, float]]:
        """The k most probable classes of one picture's probabilities [classes], as (index, label, p)."""
        values, indices = probs.topk(min(k, len(probs)))
        return [(int(i), self.labels[int(i)], float(p)) for p, i in zip(values, indices)]


def penultimate(model: Model) -> str:
    """The classifier module, whose INPUT is the penultimate feature vector (one rule for every family)."""
    return model.classifier.rsplit(".", 1)[0]


def fingerprint(model: Model) -> str:
    """A short hash that tells networks apart: name, architecture, preprocessing, first and last weights.

    Cache files are named by it, so two checkpoints of one architecture never share a cache entry."""
    h = hashlib.sha1(f"{model.name}|{model.arch}|{model.preprocessing}".encode())
    state = model.net.state_dict()
    for key in (f"{model.first_conv}.weight", model.classifier):
        if key in state:
            h.update(state[key].detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
