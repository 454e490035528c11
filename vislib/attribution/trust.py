"""The trust checks' earlier home: they live in `vislib.trust` now (a package: the sanity check,
deletion and insertion curves, faithfulness scores, the leaderboard). These names stay importable
from here and are the very same objects."""
from vislib.trust.curves import DeletionCurve, deletion_curve, deletion_curves
from vislib.trust.sanity import RandomisationCheck, randomisation_check

__all__ = ["DeletionCurve", "RandomisationCheck", "deletion_curve", "deletion_curves", "randomisation_check"]
