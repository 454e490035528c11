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

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from torch import nn

from vislib.models.checkpoints import ModelError, load_checkpoint
from vislib.models.model import Model, Preprocessing
from vislib.models.wrapped import prepare

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
        net, device = prepare(net, device)
        return Model(net=net, name=name or self.name, labels=list(labels), preprocessing=self.preprocessing(),
                     device=device, arch=self.name, first_conv=self.first_conv, classifier=self.classifier,
                     _catalogue=self.catalogue(net))

    def load(self, device=None) -> Model:
        """The family's own trained network."""
        if self.weights is None:
            raise ModelError(f"{self.name} has no weights of its own; load a checkpoint with arch={self.name!r}.")
        return self.assemble(self.weights.load(), self.weights.labels(), device)


FAMILIES: dict[str, Family] = {}  # name -> family, in the order the picker lists them
# Families made on demand from a library's registry: (names(taken) -> list of names, make(name) ->
# Family or None). vislib.models.generated adds torchvision's and timm's when it is imported.
GENERATORS: list[tuple[Callable[[dict], list[str]], Callable[[str], Family | None]]] = []


def add_generator(names: Callable[[dict], list[str]], make: Callable[[str], Family | None]) -> None:
    if (names, make) not in GENERATORS:
        GENERATORS.append((names, make))


def _find(name) -> Family | None:
    """The zoo's family of that name, else a generator's; None if there is none."""
    try:
        return FAMILIES.get(name) or next((fam for _, make in GENERATORS if (fam := make(name)) is not None), None)
    except TypeError:  # an unhashable name, e.g. an upload's bytes
        return None


def register(fam: Family) -> Family:
    """Add a family to the table (a second family of the same name is a bug, not an update)."""
    if FAMILIES.get(fam.name, fam) is not fam:
        raise ValueError(f"a model family named {fam.name!r} is already registered")
    FAMILIES[fam.name] = fam
    return fam


def family(name: str) -> Family:
    """The family of that name: one of the zoo's, or one generated from torchvision's or timm's registry."""
    found = _find(name)
    if found is None:
        raise ModelError(f"'{name}' is not an architecture of torchvision or timm (timm's as timm:NAME). {_hint(name)}")
    return found


def _hint(name) -> str:
    """Where to look for a name that is no family: the closest names, or the command that lists them."""
    close = difflib.get_close_matches(name, architectures(), n=3, cutoff=0.8) if isinstance(name, str) else []
    return f"Did you mean {', '.join(close)}?" if close else "`vislib models --all` lists them."


def architectures(search: str | None = None) -> list[str]:
    """Every family a person's checkpoint may be an instance of: the zoo's, then torchvision's and
    timm's (as timm:NAME); with `search`, those whose name contains it (any case)."""
    names = list(FAMILIES) + [n for list_names, _ in GENERATORS for n in list_names(FAMILIES)]
    if search:
        needle = search.lower().strip()
        names = [n for n in names if needle in n.lower()]
    return names


def list_models() -> list[str]:
    """The families with weights of their own: what the picker offers."""
    return [name for name, fam in FAMILIES.items() if fam.weights is not None]


def availability(name: str) -> Availability:
    """Whether `name` can be loaded now, for the model picker."""
    fam = family(name)
    if fam.weights is None:
        return Availability("unavailable", f"{name} has no weights of its own; load a checkpoint of it.")
    return fam.weights.availability()


WHOLE_NETWORK_FILES = (".pt2", ".onnx")


def _file_name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", "") or ""


def load_model(name=DEFAULT_MODEL, device=None, arch: str | None = None, labels=None, input_size: int | None = None,
               mean=None, std=None) -> Model:
    """A network by name (the zoo's, any torchvision classification architecture, timm's as
    timm:NAME, each with its library's ImageNet weights), a checkpoint file of any of those
    architectures (`arch=`, optional `labels=`), or a whole-network file `.pt2` / `.onnx` (with
    `input_size`, `mean`, `std` and optional `labels`). The path, bytes or upload of a file."""
    is_file = not isinstance(name, (str, os.PathLike)) or os.path.exists(name)
    if not is_file:
        fam = _find(name)
        if fam is None:
            raise ModelError(f"'{name}' is neither a network this app knows (the zoo's, torchvision's, or timm's "
                             f"as timm:NAME) nor a file. {_hint(name)}")
        return fam.load(device)
    if _file_name(name).lower().endswith(WHOLE_NETWORK_FILES) and not arch:
        from vislib.models.exported import load_exported
        return load_exported(name, labels=labels, input_size=input_size, mean=mean, std=std, device=device)
    if not arch:
        raise ModelError("Choose the architecture the checkpoint was trained with (arch=...).")
    return load_checkpoint(name, family(arch), labels, device)
