"""A network's anatomy: per layer its shape, parameters, multiply-adds, stride and receptive
field (`table`), and the zoo compared by accuracy against cost (`zoo`)."""
from vislib.anatomy.table import (
           anatomy,
           field_box,
           format_count,
           kind_of,
           macs_of,
           stages,
           totals,
)
from vislib.anatomy.zoo import imagenet_truth, top1, zoo_point

__all__ = ["anatomy", "field_box", "format_count", "imagenet_truth", "kind_of", "macs_of", "stages", "top1",
           "totals", "zoo_point"]
