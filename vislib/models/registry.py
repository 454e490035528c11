"""The one table of model families, and loading a network by name.

A Family says in ONE place everything that differs between networks: how to build the
architecture, which module is its first convolution and which key its classifier, its layer
catalogue, its preprocessing, and where its own trained weights come from (a `WeightSource`,
which also knows their labels and whether they can be loaded now). `load_model`, `availability`
and `family` only look a name up in the table; nothing here knows any family by name.

Families register themselves when their module is imported; `vislib.models` imports them all
(in the order the picker lists them), so the table is full whenever this module is used.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from vislib.models.checkpoints import ModelError, load_checkpoint
from vislib.models.model import Model, Preprocessing
from vislib.runtime import devices, queue

DEFAULT_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class Availability:
    state: str   # "ready", "download" or "unavailable"
    detail: str  # one sentence for the picker


class WeightSource(Protocol):
    """Where a family's own trained weights come from (torchvision's idea: weights are data)."""

    def availability(self) -> Availability:
        """Whether load() can work now, without loading anything."""

    def labels(self) -> list[str]:
        """The class names of these weights, in class-id order."""

    def load(self) -> nn.Module:
        """The network with these weights, on the CPU; ModelError (one sentence) if they cannot be had."""


@dataclass(frozen=True, eq=False)
class Family:
    name: str                                    # the name people choose, also a checkpoint's arch=
    build: Callable[[int], nn.Module]            # num_classes -> architecture with random weights
    catalogue: Callable[[nn.Module], list[tuple[str, str]]]  # (module name, kind) in forward order
    first_conv: str                              # module name of the first convolution
    classifier: str                              # state-dict key of the last layer's weight
    preprocessing: Callable[[], Preprocessing]   # called when a Model is made: may import a library
    weights: WeightSource | None = None          # None: only a person's checkpoint gives it weights

    def assemble(self, net: nn.Module, labels: list[str], device=None, name: str | None = None) -> Model:
        """A Model of this family around `net` (weights loaded): frozen, in eval mode, on `device`."""
        device = devices.resolve(device)
        net = net.eval().to(device)
        if device.type == "cpu":
            # oneDNN's convolutions run faster in channels-last order on the CPU, on every family of
            # the zoo: forward 1.15-2.5x (lite0 2.5x), forward + backward 1.07-1.44x
            # (bench/channels_last.py); the logits agree to float rounding (<= 4e-5). Only the
            # weights change order: each layer's output follows them, the input may stay as it is.
            net = net.to(memory_format=torch.channels_last)
        # Explanations need gradients with respect to the input only; frozen weights keep every
        # backward pass from also computing (and storing) weight gradients.
        net.requires_grad_(False)
        net.register_forward_pre_hook(queue.guard)
        return Model(net=net, name=name or self.name, labels=list(labels), preprocessing=self.preprocessing(),
                     device=device, arch=self.name, first_conv=self.first_conv, classifier=self.classifier,
                     _catalogue=self.catalogue(net))

    def load(self, device=None) -> Model:
        """The family's own trained network."""
        if self.weights is None:
            raise ModelError(f"{self.name} has no weights of its own; load a checkpoint with arch={self.name!r}.")
        return self.assemble(self.weights.load(), self.weights.labels(), device)


FAMILIES: dict[str, Family] = {}  # name -> family, in the order the picker lists them


def register(fam: Family) -> Family:
    """Add a family to the table (a second family of the same name is a bug, not an update)."""
    if FAMILIES.get(fam.name, fam) is not fam:
        raise ValueError(f"a model family named {fam.name!r} is already registered")
    FAMILIES[fam.name] = fam
    return fam


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name, e.g. an upload's bytes
        raise ModelError(f"'{name}' is not an architecture this app knows; "
                         f"choose one of: {', '.join(architectures())}.") from None


def architectures() -> list[str]:
    """Every family: what a person's checkpoint may be an instance of."""
    return list(FAMILIES)


def list_models() -> list[str]:
    """The families with weights of their own: what the picker offers."""
    return [name for name, fam in FAMILIES.items() if fam.weights is not None]


def availability(name: str) -> Availability:
    """Whether `name` can be loaded now, for the model picker."""
    fam = family(name)
    if fam.weights is None:
        return Availability("unavailable", f"{name} has no weights of its own; load a checkpoint of it.")
    return fam.weights.availability()


def load_model(name: str = DEFAULT_MODEL, device=None, arch: str | None = None, labels=None) -> Model:
    """Load a network of the zoo by name, or a checkpoint file (with `arch=` and optional `labels=`)."""
    fam = FAMILIES.get(name) if isinstance(name, str) else None
    if fam is not None and fam.weights is not None:
        return fam.load(device)
    if not isinstance(name, (str, os.PathLike)) or os.path.exists(name):  # a file, or an upload's bytes
        if not arch:
            raise ModelError("Choose the architecture the checkpoint was trained with (arch=...).")
        return load_checkpoint(name, family(arch), labels, device)
    raise ModelError(f"'{name}' is neither a model of the zoo ({', '.join(list_models())}) nor a checkpoint file.")
