"""The torchvision families: architecture, labels and preprocessing from torchvision's DEFAULT weights.

Their weights live in torchvision's own cache (under $TORCH_HOME) and are downloaded on first
use where the machine is online. What torchvision's builders do with their weights beyond
`load_state_dict` is written down per family (`Shape.options`, `Shape.unused`) and done here.
"""
from __future__ import annotations

import collections
import functools
import os
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torchvision
from torch import nn

from vislib.models.checkpoints import ModelError
from vislib.models.model import Preprocessing
from vislib.models.registry import Availability, Family, register


def _features_catalogue(net: nn.Module) -> list[tuple[str, str]]:
    """AlexNet, VGG and SqueezeNet: the activations and pools of their `features` stack."""
    kinds = {nn.ReLU: "conv", nn.MaxPool2d: "pool"}
    out = []
    for i, m in enumerate(net.features):
        kind = kinds.get(type(m)) or ("fire" if type(m).__name__ == "Fire" else None)
        if kind:
            out.append((f"features.{i}", kind))
    return out


def _resnet_catalogue(net: nn.Module) -> list[tuple[str, str]]:
    blocks = [(f"layer{s}.{j}", "block") for s in range(1, 5) for j in range(len(getattr(net, f"layer{s}")))]
    return [("relu", "stem"), ("maxpool", "pool"), *blocks]


def _googlenet_catalogue(net: nn.Module) -> list[tuple[str, str]]:
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
             "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
             "inception5a", "inception5b"]
    return [(n, "pool" if n.startswith("maxpool") else "inception" if n.startswith("inc") else "conv") for n in names]


def _mobilenet_catalogue(net: nn.Module) -> list[tuple[str, str]]:
    last = len(net.features) - 1
    return [(f"features.{i}", "stem" if i == 0 else "head" if i == last else "block") for i in range(last + 1)]


@dataclass(frozen=True)
class Shape:
    catalogue: Callable[[nn.Module], list[tuple[str, str]]]
    first_conv: str
    classifier: str                                       # state-dict key of the last layer's weight
    build: dict = field(default_factory=dict)             # builder options for every network of the family
    options: dict = field(default_factory=dict)           # ... and for torchvision's weights on top
    unused: tuple[str, ...] = ()                          # prefixes of the weight file's keys the app drops


_NO_INIT = {"init_weights": False}  # the weights replace the random init: skip its cost
# GoogLeNet's weights expect the input re-normalised (transform_input) and carry auxiliary
# classifiers for training that the app does not use.
_GOOGLENET = Shape(_googlenet_catalogue, "conv1.conv", "fc.weight", build={"aux_logits": False, **_NO_INIT},
                   options={"transform_input": True}, unused=("aux1.", "aux2."))
SHAPES = {
    "alexnet": Shape(_features_catalogue, "features.0", "classifier.6.weight"),
    "vgg16": Shape(_features_catalogue, "features.0", "classifier.6.weight", options=_NO_INIT),
    "vgg19": Shape(_features_catalogue, "features.0", "classifier.6.weight", options=_NO_INIT),
    "resnet18": Shape(_resnet_catalogue, "conv1", "fc.weight"),
    "resnet50": Shape(_resnet_catalogue, "conv1", "fc.weight"),
    "googlenet": _GOOGLENET,
    "squeezenet1_1": Shape(_features_catalogue, "features.0", "classifier.1.weight"),
    "mobilenet_v3_large": Shape(_mobilenet_catalogue, "features.0.0", "classifier.3.weight"),
}


@functools.lru_cache(maxsize=4)
def can_reach(host: str) -> bool:
    """Whether the machine can open a connection to `host` (remembered: the picker asks often)."""
    try:
        socket.create_connection((host, 443), timeout=1.5).close()
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class TorchvisionWeights:
    """torchvision's DEFAULT weights of one architecture, kept in torchvision's cache."""
    arch: str
    build: dict = field(default_factory=dict)    # builder options for every network of the family
    options: dict = field(default_factory=dict)  # ... and for torchvision's weights on top
    unused: tuple[str, ...] = ()                 # prefixes of the weight file's keys the app drops
    rename: Callable[[dict], dict] | None = None  # old key names in the file -> today's (DenseNet)

    @property
    def _default(self):
        return torchvision.models.get_model_weights(self.arch).DEFAULT

    def file(self) -> tuple[str, str]:
        """(file name, folder) where torchvision keeps the weights."""
        name = os.path.basename(urllib.parse.urlparse(self._default.url).path)
        return name, os.path.join(torch.hub.get_dir(), "checkpoints")

    def availability(self) -> Availability:
        file, folder = self.file()
        if os.path.exists(os.path.join(folder, file)):
            return Availability("ready", "Weights in torchvision's cache.")
        if can_reach(urllib.parse.urlparse(self._default.url).hostname):
            return Availability("download", "Weights will be downloaded on first use.")
        return Availability("unavailable", f"Offline: put {file} into {folder} to use it.")

    def labels(self) -> list[str]:
        return list(self._default.meta["categories"])

    def load(self) -> nn.Module:
        file, folder = self.file()
        try:
            # Not get_model(weights=...): torchvision's builders unpickle the cached file in full, and
            # that file may be one a person put there by hand (the message below asks them to).
            state = torch.hub.load_state_dict_from_url(self._default.url, progress=False, check_hash=True,
                                                       weights_only=True)
            kept = {k: v for k, v in (self.rename(state) if self.rename else state).items()
                    if not k.startswith(self.unused)}
            # Keep the file's metadata, as torchvision's builders do: MNASNet reads its layout's
            # version there and refuses a state dict without it.
            kept = collections.OrderedDict(kept)
            kept._metadata = getattr(state, "_metadata", None)
            net = torchvision.models.get_model(self.arch, weights=None, **self.build, **self.options)
            net.load_state_dict(kept)
        except Exception as err:  # URLError is an OSError; the restricted unpickler raises many kinds on garbage
            cached = os.path.exists(os.path.join(folder, file))
            why = "is damaged" if cached else "is not on this machine and could not be downloaded"
            raise ModelError(f"The weight file {file} for {self.arch} {why}: put a good copy of it into {folder}.") \
                from err
        return net


def build(arch: str, options: dict, num_classes: int) -> nn.Module:
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **options)


def preprocessing(arch: str) -> Preprocessing:
    t = torchvision.models.get_model_weights(arch).DEFAULT.transforms()
    return Preprocessing(t.crop_size[0], t.resize_size[0], t.interpolation.value, tuple(t.mean), tuple(t.std))


def _register(arch: str, shape: Shape) -> Family:
    return register(Family(
        name=arch, build=functools.partial(build, arch, shape.build), catalogue=shape.catalogue,
        first_conv=shape.first_conv, classifier=shape.classifier,
        preprocessing=functools.partial(preprocessing, arch),
        weights=TorchvisionWeights(arch, shape.build, shape.options, shape.unused)))


FAMILIES = tuple(_register(arch, shape) for arch, shape in SHAPES.items())
