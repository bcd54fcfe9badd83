"""A model artifact's towers and repeat prior scored on a window of later events."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import artifact as artifact_lib
from tfrec import inference
from tfrec.data import examples as examples_lib
from tfrec.data import schema, vocab
from tfrec.evaluation import protocol, refresh_lag
from tfrec.models import repeat_prior
from tfrec.training import trainer

# The segment of items first seen during the evaluated window (`window_result(new_items=True)`).
NEW_IN_WINDOW = "new_in_window"
# Its part listed on the query's own UTC day: an item first seen that day, before the query.
LISTED_SAME_DAY = "listed_same_day"
DAY_SECONDS = 86_400
KS = (10, 50)


def window_result(
    path: os.PathLike | str,
    dataset: schema.Dataset,
    start: int,
    end: int,
    segments: Optional[Callable[[vocab.ItemTable], dict]] = None,
    refresh_lag_seconds: Optional[int] = None,
    new_items: bool = False,
) -> protocol.EvalResult:
    """The evaluation of an artifact's towers + repeat prior on the window [start, end).

    By default the ranking is over the shop's catalog at `start` (items with an event before
    it), and items the model's own catalog lacks score lowest, as a served model could not
    return them. With `new_items`, items first seen during the window also count (in the
    ranking and the relevant sets), the segment NEW_IN_WINDOW holds them, and LISTED_SAME_DAY
    those of them first seen on their query's own UTC day, before the query. With
    `refresh_lag_seconds`, the model's index is refreshed that far behind the event log
    (`refresh_lag`): a query at time t can also be shown every item first seen at or before
    t - lag, embedded by the model's item tower from its catalog row; later items score lowest
    for it. A relevant item first seen less than the lag before its query (at the latest, by
    that query itself) is then out of reach of every model; it still counts, the same for all.

    Queries and histories come from `dataset`, so two models scored on the same `dataset`
    with the same `new_items` answer the same queries (per-query values pair up).

    Args:
        path: path. The model artifact (or its run folder).
        dataset: schema.Dataset. Events up to `end` at least, and the catalog.
        start, end: int. The window, unix seconds.
        segments: callable or None. ItemTable -> `protocol.evaluate` segments (name ->
            (query mask or None, item mask or None)) over that table's items.
        refresh_lag_seconds: int or None. Refresh the model's index this many seconds behind
            the events; None: serve the model's own catalog. Defaults to None.
        new_items: bool. Count items first seen in the window. Defaults to False.
    """
    art = artifact_lib.Artifact(path)
    spec = art.spec()
    towers = trainer.load_trained(art.config, art.root, art.prepared())
    inter = dataset.interactions[dataset.interactions["timestamp"] < end]
    data = art.config.data
    queries = examples_lib.build_eval_queries(
        inter, start, end, data.max_history, data.target_events
    )
    table = vocab.build_item_table(dataset.items, spec)
    first = pd.Series(table.item_ids).map(inter.groupby("item_id")["timestamp"].min())
    first_seen = first.to_numpy(np.float64)
    available = first_seen < (end if new_items else start)
    known = np.isin(table.item_ids, art.catalog()["item_id"].astype(str).to_numpy(dtype=object))
    items = inference.item_embeddings(towers.candidate_model, table)
    q = inference.query_embeddings(towers.query_model, queries, spec)
    prior = repeat_prior.RepeatPrior.load(art.workdir.repeat_prior)
    scored = prior.apply(inference.dot_score_fn(q, items), table.index_of(queries.history_item_ids))
    mask = (
        refresh_lag.fixed(known)
        if refresh_lag_seconds is None
        else refresh_lag.candidates(known, first_seen, queries.timestamp, refresh_lag_seconds)
    )
    relevant = [table.index_of(r) for r in queries.relevant]
    slices = {} if segments is None else dict(segments(table))
    if new_items:
        slices[NEW_IN_WINDOW] = (None, first_seen >= start)
        t = np.asarray(queries.timestamp, dtype=np.float64)
        day = t - t % DAY_SECONDS

        def same_day(q: np.ndarray, i: np.ndarray) -> np.ndarray:
            # NaN (never seen) compares False: such an item is in no day.
            return (first_seen[i] >= np.maximum(day[q], start)) & (first_seen[i] < t[q])

        slices[LISTED_SAME_DAY] = (None, same_day)
    return protocol.evaluate(
        refresh_lag.restrict(scored, mask),
        relevant,
        len(table),
        ks=KS,
        available=available,
        segments=slices or None,
    )
