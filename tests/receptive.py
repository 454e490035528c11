"""The truth about receptive fields that the layer tests compare with: the input pixels whose
change moves one cell of a layer, found by a gradient through a copy of the network that hides
no wire. Shared by tests/test_layers.py (the zoo's hand-written catalogues) and tests/test_zoo.py
(found catalogues of generated families)."""
from __future__ import annotations

import copy

import torch
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU,
               nn.Mish, nn.ELU, nn.PReLU)
NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


class _Stop(Exception):
    pass


def wiring(net: nn.Module) -> nn.Module:
    """A float64 copy of `net` whose input gradient of a cell is nonzero exactly on the pixels wired
    to it, i.e. its receptive field.

    A gradient on real or random weights can miss pixels of the field: a ReLU that is off, a
    max-pool that passes one input of its window, weights of both signs that cancel, a saturated
    ReLU6 or hard sigmoid. So, keeping which pixel is wired to which cell: activations and norms
    become the identity (a norm mixes channels or scales them, never neighbouring pixels),
    max-pools become average pools of the same window, and every parameter is positive (each
    convolution's and linear layer's weights a weighted average). With a positive input every
    value and every product along every path is then positive, so nothing cancels. float64 keeps
    the far corners' gradients, products of a few dozen weights of about 1e-3, from underflowing.
    Squeeze-and-excitation gates scale channels by the whole picture; the receptive field counts
    the local path, so they are removed. The heads are never reached (the probe stops at its last
    layer): leaving them out of the copy saves copying VGG's 120 million classifier weights.
    """
    heads = {id(m): nn.Identity() for m in net.modules() if isinstance(m, nn.Linear)}
    net = copy.deepcopy(net, heads).to(torch.float64).eval()

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, ACTIVATIONS + NORMS) or "SqueezeExcit" in type(child).__name__:
                setattr(parent, name, nn.Identity())
            elif type(child) is nn.MaxPool2d:
                assert child.dilation in (1, (1, 1))
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   ceil_mode=child.ceil_mode))
            else:
                assert "MaxPool" not in type(child).__name__, f"no stand-in for {type(child).__name__}"
                swap(child)

    swap(net)
    torch.manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            for p in m.parameters(recurse=False):
                p.uniform_(0.5, 1.5)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.div_(m.weight.sum(dim=tuple(range(1, m.weight.dim())), keepdim=True))
        for b in net.buffers():
            b.fill_(1)
    return net


def brute_force_boxes(net: nn.Module, size: int, probes: list[tuple[str, int, int]]) -> list[tuple[int, ...]]:
    """(x0, y0, x1, y1) around the input pixels whose change moves cell (row, col) of each layer, for
    `net` as `wiring` made it. Probe i is batch element i (nothing mixes samples), so one backward
    pass gives every probe."""
    modules = dict(net.named_modules())
    wanted, outputs = {name for name, _, _ in probes}, {}

    def keep(name):
        def hook(_m, _i, out):
            outputs.setdefault(name, out.clone())  # a clone: a later in-place op must not change it
            if len(outputs) == len(wanted):
                raise _Stop  # what comes after the last probed layer does not matter
        return hook

    handles = [modules[name].register_forward_hook(keep(name)) for name in wanted]
    torch.manual_seed(0)
    x = (torch.rand(len(probes), 3, size, size, dtype=torch.float64) + 0.5).requires_grad_()
    try:
        net(x)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    total = sum(outputs[name][i, :, row, col].sum() for i, (name, row, col) in enumerate(probes))
    (grad,) = torch.autograd.grad(total, x)
    assert bool((grad >= 0).all())  # every path positive: a zero is a missing wire, not a cancellation
    boxes = []
    for g in grad.sum(1):
        ys, xs = torch.nonzero(g, as_tuple=True)
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return boxes
