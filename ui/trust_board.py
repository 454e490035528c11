"""The leaderboard page's pieces: the run over a collection (each picture's scores kept in the
session as soon as they are made, so that Stop keeps them), the table with each metric's best
marked, and a bar chart with the 95% intervals."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from ui import jobs
from vislib import attribution, trust

QUICK_DEFAULT = ["saliency", "gradcam", "random", "edges"]  # fast, and the two baselines to beat


def pick(model_key: str) -> tuple[list[str], list[str]]:
    """The methods and metrics to compare."""
    names = [m for ms in attribution.grouped().values() for m in ms]
    methods = st.multiselect("Methods", names, default=[m for m in QUICK_DEFAULT if m in names],
                             format_func=lambda m: "{}: {}".format(attribution.GROUPS[attribution.METHODS[m].group][0],
                                                                   attribution.METHODS[m].label),
                             key=f"board-methods-{model_key}")
    metrics = st.multiselect("Scores", list(trust.METRICS), default=[m for m in trust.METRICS if m != "road"],
                             format_func=lambda m: trust.METRICS[m].label, key="board-metrics",
                             help="ROAD is the slowest score: about a second a map on a CPU (8 imputed copies)")
    return methods, metrics


def earlier_scores() -> tuple[pd.DataFrame | None, str]:
    """An earlier run's scores to go on from (uploaded), with a key for them; (None, "") when none,
    or when the file is not such a table (said in one sentence)."""
    upload = st.file_uploader("Go on from an earlier run: every picture's scores (CSV)", type=["csv"],
                              key="board-earlier", max_upload_size=50,  # 1000 pictures of every method: 5 MB
                              help="The file \"Download every picture's scores\" gave, from the same network and "
                              "collection: the maps already scored there are not made again")
    if upload is None:
        return None, ""
    try:
        return trust.read_scores(upload), f"{upload.name}-{upload.size}-{upload.file_id}"
    except ValueError as err:
        st.error(str(err).replace(f"{upload.name} ", f"The file {upload.name} ", 1))
        return None, ""


def run(model, model_key: str, collection, collection_key: str, methods: list[str], metrics: list[str],
        pictures: int, earlier: pd.DataFrame | None = None, earlier_key: str = "") -> pd.DataFrame | None:
    """The Run button and the job; returns the per-picture scores made so far (None before a run):
    the pictures spread over the collection (`trust.spread`) that have every score, those of
    `earlier` included."""
    key = f"board-{model_key}-{collection_key}-{methods}-{metrics}-{pictures}-{earlier_key}"
    store = st.session_state.setdefault("board-scores", {})
    chosen = trust.spread(len(collection), pictures)

    def job(progress):
        store[key] = [] if earlier is None else [earlier]
        while len(store) > 8:  # a session keeps its last few runs
            store.pop(next(iter(store)))
        trust.picture_scores(model, collection, methods, metrics, progress, pictures=chosen, earlier=earlier,
                             each=store[key].append)  # each picture kept as soon as it is scored: Stop keeps it
        return True
    jobs.run(key, job, "Run")
    if not store.get(key):
        return None
    return trust.complete_pictures(pd.concat(store[key], ignore_index=True), chosen, methods, metrics)


def labelled(table: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as a person reads it: labels, the interval as text, a star on the best."""
    return pd.DataFrame({
        "method": [attribution.METHODS[m].label for m in table["method"]],
        "score": [f"{trust.METRICS[m].label} {'↑' if trust.METRICS[m].higher_is_better else '↓'}"
                  for m in table["metric"]],
        "mean": table["mean"], "95% interval": [f"{lo:.3g} to {hi:.3g}" for lo, hi in zip(table["low"], table["high"])],
        "pictures": table["n"], "best": ["★" if b else "" for b in table["best"]]})


def figure(table: pd.DataFrame) -> go.Figure:
    """One bar chart per metric: each method's mean with its 95% interval; the best in green."""
    metrics = list(dict.fromkeys(table["metric"]))
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[
        f"{trust.METRICS[m].label} {'↑' if trust.METRICS[m].higher_is_better else '↓'}" for m in metrics])
    for col, metric in enumerate(metrics, 1):
        rows = table[table["metric"] == metric]
        fig.add_trace(go.Bar(x=[attribution.METHODS[m].label for m in rows["method"]], y=rows["mean"],
                             error_y=dict(type="data", symmetric=False, array=(rows["high"] - rows["mean"]).fillna(0),
                                          arrayminus=(rows["mean"] - rows["low"]).fillna(0)),
                             marker_color=["#2ca02c" if b else "#7f7f7f" for b in rows["best"]], showlegend=False,
                             name=trust.METRICS[metric].label), row=1, col=col)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def show(scores: pd.DataFrame) -> None:
    table = trust.summarise(scores)
    n = scores["picture"].nunique()
    st.caption(f"Over {n} picture{'s' if n != 1 else ''}, each explained for the network's top class. The 95% "
               "interval is Student's t interval of the mean; ★ marks the best mean of each score.")
    st.dataframe(labelled(table), hide_index=True, key="board-table")
    st.plotly_chart(figure(table), key="board-chart")
    left, right = st.columns(2)
    left.download_button("Download the leaderboard (CSV)", table.to_csv(index=False), file_name="leaderboard.csv",
                         mime="text/csv", on_click="ignore")
    right.download_button("Download every picture's scores (CSV)", scores.to_csv(index=False),
                          file_name="leaderboard-scores.csv", mime="text/csv", on_click="ignore")
