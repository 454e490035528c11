"""Families generated from the libraries' own registries: every torchvision classification
architecture under its own name, every timm model as `timm:NAME`.

Nothing here is written per network. The names come from `torchvision.models.list_models` and
`timm.list_models` (a list of strings, read once); a Family is made only when a name is asked
for: the architecture is built on the meta device (no memory, no initialisation cost) and its
layer catalogue, first convolution and classifier are found by `vislib.models.survey`.
Preprocessing comes from torchvision's weights transforms or timm's pretrained config, labels
from the weights' metadata, weights through each library's own cache.
"""
from __future__ import annotations

import functools
import os
import re
import urllib.parse
from dataclasses import dataclass

import timm
import torch
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode

from vislib.models.checkpoints import ModelError
from vislib.models.efficientnet_lite import imagenet_labels
from vislib.models.efficientnet_lite import preprocessing as timm_preprocessing
from vislib.models.model import Preprocessing
from vislib.models.registry import Availability, Family, add_generator
from vislib.models.survey import survey
from vislib.models.torchvision_zoo import TorchvisionWeights, can_reach
from vislib.models.torchvision_zoo import build as torchvision_build
from vislib.models.torchvision_zoo import preprocessing as torchvision_preprocessing
from vislib.models.wrapped import IMAGENET_MEAN, IMAGENET_STD

TIMM = "timm:"


def _densenet_keys(state: dict) -> dict:
    """DenseNet's weight files keep the key names of an old torchvision ('norm.1' for 'norm1');
    its builder renames them with this pattern before loading, so we do too."""
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    return {(f"{m.group(1)}{m.group(2)}" if (m := pattern.match(k)) else k): v for k, v in state.items()}


def _torchvision_quirks(arch: str) -> dict:
    """What torchvision's builder does with its DEFAULT weights beyond load_state_dict, for the few
    architectures where it does anything (read from torchvision/models/*.py)."""
    meta = torchvision.models.get_model_weights(arch).DEFAULT.meta
    if arch == "inception_v3":
        return {"build": {"aux_logits": False, "init_weights": False}, "options": {"transform_input": True},
                "unused": ("AuxLogits.",)}
    if arch.startswith("vit_"):  # the position embedding is sized for the weights' picture size
        return {"build": {"image_size": meta["min_size"][0]}}
    if arch.startswith("vgg"):
        return {"options": {"init_weights": False}}  # the weights replace the random init: skip its cost
    if arch.startswith("densenet"):
        return {"rename": _densenet_keys}
    return {}


class _MNASNet(torchvision.models.MNASNet):
    """torchvision's MNASNet reads its layout's version from a state dict's metadata (`_metadata`,
    which torch.save keeps) and refuses one without it ("version should be set to 1 or 2 instead
    of None"): every .safetensors checkpoint, and every state dict rebuilt as a plain dict. Without
    it the layout is today's; a checkpoint of the old one (alpha != 1) has other shapes and is
    refused, naming its keys, before it gets here."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        local_metadata = {"version": torchvision.models.MNASNet._version, **local_metadata}
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


_CLASSES = {torchvision.models.MNASNet: _MNASNet}  # the architectures' classes that load differently here


def _torchvision_build(arch: str, options: dict, num_classes: int) -> nn.Module:
    net = torchvision_build(arch, options, num_classes)
    net.__class__ = _CLASSES.get(type(net), type(net))
    return net


@functools.cache
def torchvision_names() -> tuple[str, ...]:
    """Every classification architecture torchvision has (detection, video... are other modules)."""
    return tuple(torchvision.models.list_models(module=torchvision.models))


@functools.cache
def timm_names() -> tuple[str, ...]:
    return tuple(TIMM + n for n in timm.list_models())


def names(taken=()) -> list[str]:
    """Every generated family's name, torchvision's first, leaving out the names in `taken`."""
    taken = set(taken)
    return [n for n in (*torchvision_names(), *timm_names()) if n not in taken]


class _EmptyOnMeta(TorchFunctionMode):
    """`torch.device("meta")` for the tensors a builder makes empty (torch.empty, zeros, ones,
    randn...: its parameters and buffers), while tensors made from values (torch.tensor, arange)
    stay real, so that a builder computing with numbers on the way still works: torchvision's
    RegNets round their widths with torch.round(...).tolist(), which the meta device refuses, and
    building them for real cost regnet_y_128gf 15 s and 2.6 GB of random weights just to list its
    layers (0.2 s this way). A mode, unlike a patched nn.Module, holds for this thread only."""
    EMPTY = {torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn,
             torch.randint, torch.normal, torch.eye}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.EMPTY and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def _meta_survey(build, input_size: int):
    """The found catalogue of an architecture, built on the meta device: no weights in memory."""
    try:
        with torch.device("meta"):
            net = build(1000)
    except Exception:  # a builder that computes with real numbers on the way
        try:
            with _EmptyOnMeta():
                net = build(1000)
        except Exception:  # anything else: build it for real
            net = build(1000)
    return survey(net.eval(), input_size)


def _family(name: str, build, preprocessing, weights) -> Family:
    found = _meta_survey(build, preprocessing().input_size)
    return Family(name=name, build=build, catalogue=lambda _net: list(found.catalogue), first_conv=found.first_conv,
                  classifier=found.classifier, preprocessing=preprocessing, weights=weights)


def _torchvision_family(arch: str) -> Family:
    quirks = _torchvision_quirks(arch)
    weights = TorchvisionWeights(arch, quirks.get("build", {}), quirks.get("options", {}), quirks.get("unused", ()),
                                 quirks.get("rename"))
    build = functools.partial(_torchvision_build, arch, quirks.get("build", {}))
    return _family(arch, build, functools.partial(torchvision_preprocessing, arch), weights)


@dataclass(frozen=True)
class TimmWeights:
    """timm's default pretrained weights of one model: in timm's own cache (downloaded on first use
    where the machine is online), or a file a person placed under $TORCH_HOME/hub/timm/."""
    arch: str

    @property
    def _cfg(self):
        return timm.models.get_pretrained_cfg(self.arch)

    def placed(self) -> tuple[str, str]:
        """(file name, folder) where a person can put the weights by hand."""
        return f"{self.arch}.safetensors", os.path.join(torch.hub.get_dir(), "timm")

    def _cached(self) -> bool:
        cfg = self._cfg
        if cfg.hf_hub_id:
            from huggingface_hub import try_to_load_from_cache
            repo, _, revision = cfg.hf_hub_id.partition("@")
            return any(isinstance(try_to_load_from_cache(repo, f, revision=revision or None), str)
                       for f in ("model.safetensors", "pytorch_model.bin"))
        file = os.path.basename(urllib.parse.urlparse(cfg.url).path)
        return bool(file) and os.path.exists(os.path.join(torch.hub.get_dir(), "checkpoints", file))

    def _host(self) -> str:
        if self._cfg.hf_hub_id:
            from huggingface_hub import constants
            return urllib.parse.urlparse(constants.ENDPOINT).hostname or ""
        return urllib.parse.urlparse(self._cfg.url).hostname or ""

    def availability(self) -> Availability:
        cfg = self._cfg
        if cfg is None or not (cfg.hf_hub_id or cfg.url):
            return Availability("unavailable", f"timm has no trained weights for {self.arch}; load a checkpoint of it.")
        file, folder = self.placed()
        if os.path.exists(os.path.join(folder, file)) or self._cached():
            return Availability("ready", "Weights in timm's cache.")
        if can_reach(self._host()):
            return Availability("download", "Weights will be downloaded on first use.")
        return Availability("unavailable", f"Offline: put the weights of timm's {cfg.hf_hub_id or self.arch} "
                                           f"as {file} into {folder} to use it.")

    def labels(self) -> list[str]:
        cfg = self._cfg
        subset = timm.data.infer_imagenet_subset(cfg) if cfg else None
        if subset in ("imagenet-1k", "imagenet1k"):
            return imagenet_labels()
        if subset:
            info = timm.data.ImageNetInfo(subset)
            return [info.index_to_description(i).split(",")[0] for i in range(info.num_classes())]
        return [f"class {i}" for i in range(cfg.num_classes if cfg else 1000)]

    def load(self) -> nn.Module:
        file, folder = self.placed()
        path = os.path.join(folder, file)
        # timm reads .safetensors with safetensors and anything else with torch.load(weights_only=True).
        overlay = {"file": path} if os.path.exists(path) else None
        why = "do not fit it or are damaged" if overlay else "are not on this machine and could not be downloaded"
        message = f"The weights of timm's {self.arch} {why}: put a good copy as {file} into {folder}."
        if overlay is None and not self._cached() and not can_reach(self._host()):
            # Say so at once: offline, huggingface_hub retries each file five times with backoff
            # (47 s for timm:resnet18) before giving up.
            raise ModelError(message)
        try:
            return timm.create_model(self.arch, pretrained=True, pretrained_cfg_overlay=overlay)
        except Exception as err:  # offline, a damaged file, a file of another model
            raise ModelError(message) from err


def _timm_build(arch: str, num_classes: int) -> nn.Module:
    return timm.create_model(arch, pretrained=False, num_classes=num_classes)


def _timm_family(name: str) -> Family:
    arch = name.removeprefix(TIMM)
    cfg = timm.models.get_pretrained_cfg(arch)
    build = functools.partial(_timm_build, arch)
    if cfg is not None:
        preprocessing = functools.partial(timm_preprocessing, arch)
    else:  # a model without any pretrained config: timm's defaults
        def preprocessing() -> Preprocessing:
            return Preprocessing(224, 256, "bicubic", IMAGENET_MEAN, IMAGENET_STD)
    return _family(name, build, preprocessing, TimmWeights(arch))


@functools.lru_cache(maxsize=256)
def family(name: str) -> Family | None:
    """The generated family of that name, made on first use; None if neither library has it."""
    if not isinstance(name, str):
        return None
    if name.startswith(TIMM) and name in timm_names():
        return _timm_family(name)
    if name in torchvision_names():
        return _torchvision_family(name)
    return None


add_generator(names, family)
