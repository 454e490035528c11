"""Which map to trust, over a collection: every method's map of every picture, every faithfulness
score, and per method and metric the mean with a 95% interval.

Each picture is explained for the class the network gives it (its top class): a collection's own
labels need not be the network's classes. The interval is Student's t interval of the mean
(mean +- t(0.975, n - 1) * sd / sqrt(n)): deterministic, and for the hundreds of pictures of a
benchmark as good as a bootstrap; with one picture it is undefined (NaN).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from vislib import render
from vislib.attribution.common import prepare
from vislib.attribution.registry import attribute, get_method
from vislib.models import Model
from vislib.runtime import Progress, report
from vislib.trust.faithfulness import METRICS, check_metrics, faithfulness

if TYPE_CHECKING:
    import pandas as pd

SCORE_COLUMNS = ["picture", "target", "method", "metric", "value"]
COLUMNS = ["method", "metric", "mean", "low", "high", "n", "higher_is_better", "best"]


def check_methods(methods: Iterable[str]) -> list[str]:
    """`methods` as a list, each known to the registry (else ValueError with one sentence)."""
    methods = list(methods)
    if not methods:
        raise ValueError("Choose at least one attribution method.")
    for method in methods:
        get_method(method)
    return methods


def picture_scores(model: Model, collection, methods: Iterable[str], metrics=tuple(METRICS),
                   progress: Progress | None = None, params: dict | None = None, pictures: Iterable[int] | None = None,
                   steps: int = 20, seed: int = 0, earlier: pd.DataFrame | None = None,
                   each: Callable[[pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """Every score of every method's map of every picture (those at `pictures`, else all), one row
    each: SCORE_COLUMNS, in the order of `pictures`, `methods` and `metrics`. Reports after each map,
    with the map as a preview; when told to stop, returns the pictures finished so far (a
    half-scored picture would favour the methods that came first). `params` maps a method to its
    keyword arguments.

    `earlier`: the scores of an earlier run on the same collection, network and settings (see
    `read_scores`), to go on from: its (picture, method) pairs that have every metric are kept, not
    made again. `each(rows)` gets each picture's new rows as soon as they are made (to append them
    to a file, so that a run stopped any way loses at most one picture)."""
    import pandas as pd  # (imported when used: the engine runs without it, the table needs it)
    methods, metrics = check_methods(methods), check_metrics(metrics)
    params = params or {}
    chosen = list(range(len(collection))) if pictures is None else [int(i) for i in pictures]
    for index in chosen:
        if not 0 <= index < len(collection):
            raise ValueError(f"The collection has {len(collection)} pictures; there is no picture {index}.")
    have = scored(earlier, metrics) if earlier is not None else set()
    todo = [(index, [m for m in methods if (index, m) not in have]) for index in chosen]
    todo = [(index, left) for index, left in todo if left]
    rows: list[tuple] = []
    made, total, going = 0, sum(len(left) for _, left in todo), True
    for index, left in todo:
        x, target = prepare(model, model.preprocess(collection[index][0])[None], None)
        found = []
        for method in left:
            amap = attribute(model, x, method, target, **params.get(method, {}))
            scores = faithfulness(model, x, target, amap, metrics, steps=steps, seed=seed + index)
            found += [(index, target, method, metric, value) for metric, value in scores.items()]
            preview = render.colorize(amap.numpy()) if amap.std() > 0 else None
            made += 1
            going = report(progress, made, total, preview, method=method, picture=index)
            if not going:
                break
        if method == left[-1]:  # the picture is whole (also when told to stop after its last map)
            rows += found
            if each is not None:
                each(pd.DataFrame(found, columns=SCORE_COLUMNS))
        if not going:
            break
    made_now = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    everything = made_now if earlier is None else pd.concat([earlier[SCORE_COLUMNS], made_now], ignore_index=True)
    return complete_pictures(everything, chosen, methods, metrics)


def complete_pictures(scores: pd.DataFrame, pictures: Iterable[int], methods: Iterable[str],
                      metrics: Iterable[str]) -> pd.DataFrame:
    """The rows of `scores` (SCORE_COLUMNS) of those `pictures` that have every method's every
    metric - one row each, ordered by picture, method and metric as given. A table of half-scored
    pictures would favour the methods that came first."""
    pictures, methods, metrics = list(pictures), list(methods), list(metrics)
    scores = scores[scores["picture"].isin(pictures) & scores["method"].isin(methods) & scores["metric"].isin(metrics)]
    scores = scores.drop_duplicates(["picture", "method", "metric"])
    pairs = scored(scores, metrics)
    whole = {p for p in pictures if all((p, m) in pairs for m in methods)}
    scores = scores[scores["picture"].isin(whole)]
    keys = scores[["picture", "method", "metric"]].copy()
    for name, order in (("picture", pictures), ("method", methods), ("metric", metrics)):
        keys[name] = keys[name].map({v: i for i, v in enumerate(order)})
    return scores.loc[keys.sort_values(list(keys.columns), kind="stable").index].reset_index(drop=True)


def read_scores(source) -> pd.DataFrame:
    """Every picture's scores as `picture_scores` makes them (SCORE_COLUMNS), from a CSV file's path
    or an open file (such as an upload); ValueError with one sentence when it is not such a table."""
    import pandas as pd
    name = getattr(source, "name", source)
    try:
        scores = pd.read_csv(source)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        raise ValueError(f"{name} is not a CSV table.") from None
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"{name} has no {', '.join(missing)} column: it is not a table of every picture's scores "
                         "(as \"Download every picture's scores\" or vislib evaluate --scores writes it).")
    unknown = sorted(set(scores["metric"]) - set(METRICS))
    if unknown:
        raise ValueError(f"{name} holds the unknown metric {unknown[0]!r}; the metrics are {', '.join(METRICS)}.")
    try:
        return scores[SCORE_COLUMNS].astype({"picture": int, "target": int, "method": str, "metric": str,
                                             "value": float})
    except (ValueError, TypeError):
        raise ValueError(f"{name} has a picture, target or value that is not a number.") from None


def scored(scores: pd.DataFrame, metrics: Iterable[str] = tuple(METRICS)) -> set[tuple[int, str]]:
    """The (picture, method) pairs of `scores` that have every one of `metrics`: a run going on from
    them need not make those maps again."""
    wanted = set(metrics)
    found = scores[scores["metric"].isin(wanted)].groupby(["picture", "method"])["metric"].nunique()
    return {(int(p), str(m)) for (p, m), n in found.items() if n == len(wanted)}


def spread(count: int, n: int) -> list[int]:
    """`n` picture indices (all `count` when n >= count) evenly spaced over a collection of `count`,
    in an order whose every prefix is itself spread: position i of the n goes at the rank of its bits
    reversed (0, n/2, n/4, 3n/4, ... with n rounded up to a power of 2), so the first k leave no gap
    wider than about 2n/k. A folder is read in class order, so its first pictures are one class; a
    run stopped after 64 of 1000 spread ones has seen about every sixteenth class."""
    n = min(int(n), int(count))
    evenly = [round(i * count / n) for i in range(n)]
    bits = max(1, (n - 1).bit_length())
    return [evenly[i] for i in sorted(range(n), key=lambda i: int(f"{i:0{bits}b}"[::-1], 2))]


def interval(values) -> tuple[float, float, float, int]:
    """(mean, low, high, n): the mean and its 95% Student's t interval (NaN for fewer than 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    from scipy import stats
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard of per-picture scores (SCORE_COLUMNS): one row per method and metric, in
    the order they first appear, with COLUMNS; `best` marks each metric's best mean."""
    import pandas as pd
    rows = []
    for (method, metric), group in scores.groupby(["method", "metric"], sort=False):
        rows.append((method, metric, *interval(group["value"]), METRICS[metric].higher_is_better))
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    table["best"] = False
    for metric, group in table.groupby("metric", sort=False):
        if group["mean"].notna().any():
            best = group["mean"].idxmax() if METRICS[metric].higher_is_better else group["mean"].idxmin()
            table.loc[best, "best"] = True
    return table


def leaderboard(model: Model, collection, methods: Iterable[str], metrics=tuple(METRICS),
                progress: Progress | None = None, params: dict | None = None, pictures: Iterable[int] | None = None,
                steps: int = 20, seed: int = 0) -> pd.DataFrame:
    """One row per method and metric: method, metric, mean, low, high (the 95% t interval), n
    (pictures), higher_is_better, best (the best mean of that metric). Over every picture of
    `collection` (or those at `pictures`); reports after each map; when told to stop, the table of
    the pictures finished so far."""
    return summarise(picture_scores(model, collection, methods, metrics, progress, params, pictures, steps, seed))
