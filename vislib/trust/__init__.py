"""Can the maps be trusted? Checks and scores that compare attribution methods.

* `sanity`: the model-randomisation sanity check (Adebayo et al. 2018);
* `curves`: deletion and insertion curves (Petsiuk et al. 2018);
* `faithfulness`: five scores of one map - deletion, insertion, ROAD, average drop, increase in
  confidence - and which way each is better (`METRICS`);
* `road`: ROAD, pytorch-grad-cam's, with its equation system built faster;
* `leaderboard`: those scores over a collection, per method and metric, with 95% intervals.

(`vislib.trust` was once a flat module, the one now at `vislib.attribution.trust`; its names are
all here.)
"""
from vislib.trust.curves import (KINDS, Curve, DeletionCurve, blurred, curve, curves, deletion_curve, deletion_curves,
                                 insertion_curve)
from vislib.trust.faithfulness import METRICS, Metric, check_metrics, faithfulness
from vislib.trust.leaderboard import (COLUMNS, SCORE_COLUMNS, complete_pictures, interval, leaderboard,
                                      picture_scores, read_scores, scored, spread, summarise)
from vislib.trust.road import ROAD_PERCENTILES
from vislib.trust.sanity import RandomisationCheck, randomisation_check

__all__ = ["COLUMNS", "KINDS", "METRICS", "ROAD_PERCENTILES", "SCORE_COLUMNS", "Curve", "DeletionCurve", "Metric",
           "RandomisationCheck", "blurred", "check_metrics", "complete_pictures", "curve", "curves", "deletion_curve",
           "deletion_curves", "faithfulness", "insertion_curve", "interval", "leaderboard", "picture_scores",
           "randomisation_check", "read_scores", "scored", "spread", "summarise"]
