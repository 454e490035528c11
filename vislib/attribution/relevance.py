"""Layer-wise relevance propagation (Bach et al. 2015) through Zennit: the class score is handed
back layer by layer, each layer sharing out what it got among its inputs by their contributions,
so the picture's relevance adds up to (nearly) the score.

Zennit's rules need a network in canonical form: batch norms merged into the convolutions before
them, and every addition of a skip connection a module of its own; its canonizers do that per
family (SequentialMergeBatchNorm, which pairs each batch norm with the layer just before it, and
ResNetCanonizer), by changing modules and
weights in place. So LRP never touches the shared network: it runs on a private deep copy, made
once per network (and again when the network's weights changed: the randomisation check resets
them in place), and used only while the network's device queue is held.
"""
from __future__ import annotations

import copy
import weakref

import torch
from torch import nn
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer, VGGCanonizer

from vislib.attribution.common import finished, prepare
from vislib.models import Model
from vislib.runtime import checkpoint


# Family -> its canonizers (a function of the network). Networks of no other family are refused.
CANONIZERS = {
    "alexnet": lambda net: [],
    "vgg16": lambda net: [VGGCanonizer()],
    "vgg19": lambda net: [VGGCanonizer()],
    "resnet18": lambda net: [ResNetCanonizer()],
    "resnet50": lambda net: [ResNetCanonizer()],
    "googlenet": lambda net: [SequentialMergeBatchNorm()],  # BasicConv2d's conv and bn, adjacent leaves
    "squeezenet1_1": lambda net: [],
    "fashion_cnn": lambda net: [SequentialMergeBatchNorm()],
}
# torchvision's other networks of those two designs (generated families, vislib.models.generated):
# Zennit's canonizers are written for torchvision's ResNet and VGG classes, whatever their depth.
FAMILY_CANONIZERS = {
    ("resnet", "resnext", "wide_resnet"): lambda net: [ResNetCanonizer()],
    ("vgg",): lambda net: [VGGCanonizer()],
    ("squeezenet",): lambda net: [],
}


def canonizers(arch: str):
    """The canonizers of a family (a function of the network), or None if LRP cannot explain it."""
    if arch in CANONIZERS:
        return CANONIZERS[arch]
    return next((make for prefixes, make in FAMILY_CANONIZERS.items() if arch.startswith(prefixes)), None)


# Why the others are refused, one clause each.
UNSUPPORTED = {
    "efficientnet_lite": "Zennit has no canonizer for its blocks' skip connections, so its relevance would not "
                         "add up to the score",
    "mobilenet_v3_large": "its squeeze-and-excitation gates multiply two activations, which LRP's rules cannot "
                          "share out",
}


def support(model: Model) -> str | None:
    """None when LRP can explain this network; else the sentence saying why not."""
    if canonizers(model.arch) is not None:
        return None
    reason = next((why for prefix, why in UNSUPPORTED.items() if model.arch.startswith(prefix)),
                  "Zennit has no canonizer for this architecture")
    return f"LRP cannot explain {model.arch}: {reason}; it works on {', '.join(CANONIZERS)}."


_copies: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]]" = weakref.WeakKeyDictionary()


def _versions(net: nn.Module) -> tuple:
    """Every weight's in-place version counter: changes whenever a weight is changed in place."""
    return tuple((id(t), t._version) for t in net.state_dict(keep_vars=True).values())


def _private(model: Model, net: nn.Module) -> nn.Module:
    """The network's private copy for LRP (inside the device queue): in-place flags off, since
    Zennit's hooks need each activation's input intact."""
    versions = _versions(net)
    cached = _copies.get(net)
    if cached is None or cached[0] != versions:
        twin = copy.deepcopy(net)  # keeps the queue's guard: the copy too refuses a pass outside it
        for m in twin.modules():
            if getattr(m, "inplace", None) is True:
                m.inplace = False
        _copies[net] = cached = (versions, twin)
    return cached[1]


def lrp(model: Model, x: torch.Tensor, target: int | None = None, epsilon: float = 1e-6) -> torch.Tensor:
    """LRP's relevance [H,W] of class `target` (None: the top class), summed over colour, with
    Zennit's EpsilonPlusFlat composite (epsilon for dense layers, z+ for convolutions, flat for
    the first layer). Seeded with the target's score, so the map adds up to about the score (the
    biases keep a little). ValueError with one sentence for a network Zennit cannot canonise."""
    why = support(model)
    if why:
        raise ValueError(why)
    x, target = prepare(model, x, target)
    with model.running() as net:
        twin = _private(model, net)
        composite = EpsilonPlusFlat(epsilon=epsilon, canonizers=canonizers(model.arch)(twin))
        checkpoint()
        with Gradient(model=twin, composite=composite) as attributor:  # hooks and canonizers undone on exit
            _, relevance = attributor(x.requires_grad_(), lambda out: out * _one_hot(out, target))
    return finished(relevance[0].sum(0))


def _one_hot(out: torch.Tensor, target: int) -> torch.Tensor:
    hot = torch.zeros_like(out)
    hot[:, target] = 1
    return hot


__all__ = ["CANONIZERS", "lrp", "support"]
