r"""TEMPORARY, for the move: the old module name, until the files that import it are repointed.

Delete this file once `grep -rn "models.zoo\|models import zoo"` finds nothing outside it.
"""
from vislib.models import *
from vislib.models import __all__  # noqa: F401
from vislib.models.torchvision_zoo import can_reach as _can_reach  # noqa: F401  (patching it changes nothing now)


def _finish(net, name, arch, fam, labels, device):  # old private helper: use fam.assemble(net, labels, device)
    return fam.assemble(net, labels, device, name=name)
