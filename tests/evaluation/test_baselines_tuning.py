"""Baseline inputs from prepared data, grid resolution and the validation grid search."""

import dataclasses
import types

import numpy as np
import pandas as pd
import pytest

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import examples
from tfrec.evaluation import baselines, protocol
from tfrec.evaluation.baselines import tuning

ITEMS = np.array(["x", "y", "z", "w"], dtype=object)


def hand_prepared(max_history=4, extra_rows=()):
    """A PreparedData stand-in: training before t=10, validation [10, 20), test from 20.

    User a: x, y (one invoice at t=1), z (t=2) in training; y (t=11), x (t=12) in validation;
    z (t=21) in test. User b (unseen in training): z (t=11) then w (t=13). User c: w (t=3).
    """
    rows = [
        ("a", "x", 1), ("a", "y", 1), ("a", "z", 2), ("c", "w", 3),
        ("a", "y", 11), ("b", "z", 11), ("a", "x", 12), ("b", "w", 13),
        ("a", "z", 21), ("c", "x", 22), *extra_rows,
    ]  # fmt: skip
    log = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    log = log.sort_values("timestamp", kind="stable").reset_index(drop=True)
    first = log.groupby("item_id")["timestamp"].min()
    log["event_type"] = "purchase"
    index = pd.Index(ITEMS)
    return types.SimpleNamespace(
        split=types.SimpleNamespace(
            train=log[log.timestamp < 10], validation_start=10, test_start=20
        ),
        available_at=lambda boundary: pd.Series(ITEMS).map(first).to_numpy() < boundary,
        dataset=types.SimpleNamespace(interactions=log),
        table=types.SimpleNamespace(item_ids=ITEMS),
        catalog_index=lambda ids: index.get_indexer(np.asarray(ids, dtype=object).ravel()).reshape(
            np.shape(ids)
        ),
        validation=examples.build_eval_queries(log, 10, 20, max_history),
        test=examples.build_eval_queries(log, 20, 30, max_history),
    )


def test_from_prepared_splits_profile_and_recent_events():
    prepared = hand_prepared()
    window, val = baselines.inputs.from_prepared(prepared, prepared.validation)
    # Training users in order of appearance: a = 0, c = 1.
    assert (window.num_users, window.num_items) == (2, 4)
    assert window.user.tolist() == [0, 0, 0, 1] and window.item.tolist() == [0, 1, 2, 3]
    # Validation queries in time order: a@11 (y), b@11 (z), a@12 (x), b@13 (w).
    assert val.user.tolist() == [0, -1, 0, -1]
    # a@12: history y(11), z(2), y(1), x(1); only y(11) is after the window; the profile is
    # z, then the t=1 invoice (reverse log order: y, x).
    assert val.history[2].tolist() == [1, 2, 1, 0] and val.num_recent.tolist() == [0, 0, 1, 1]
    offsets = val.profile_offsets
    assert val.profile_items[offsets[2] : offsets[3]].tolist() == [2, 1, 0]
    row, item, pos = val.events()
    assert item[row == 2].tolist() == [1, 2, 1, 0] and pos[row == 2].tolist() == [0, 1, 2, 3]
    # b@13: unseen in training, past = its recent event z only.
    assert item[row == 3].tolist() == [2] and pos[row == 3].tolist() == [0]
    _, test = baselines.inputs.from_prepared(prepared, prepared.test)
    # a@21: three events after the window (y, x and, with max_history 4, the training z).
    assert test.num_recent.tolist() == [2, 0] and test.history[0].tolist() == [0, 1, 2, 1]


def test_queries_matrix_weights_positions_by_decay():
    # Events: 4 (recent, position 0), then the profile 2, 3 (positions 1, 2). History slot 1
    # (item 2) repeats the profile, so it is not counted again.
    q = baselines.Queries([0], [[4, 2, -1]], [1], [0, 2], [2, 3])
    np.testing.assert_allclose(q.matrix(5, decay=0.5).toarray(), [[0, 0, 0.5, 0.25, 1]])
    np.testing.assert_allclose(q.matrix(5, binary=True).toarray(), [[0, 0, 1, 1, 1]])
    with pytest.raises(ValueError, match=r"`num_recent` must lie in \[0, 3\], received 4..4"):
        baselines.Queries([0], [[4, 2, -1]], [4], [0, 2], [2, 3])


def buy_again_case():
    """Each validation query's relevant item is its most recent one; an older one is frequent."""
    window = baselines.Window([0, 0, 0, 0], [2, 2, 2, 1], [1, 2, 3, 4], 1, 5)
    # Past, most recent first: 1, then 2 three times. decay 1: 2 (3.0) beats 1 (1.0);
    # decay 0.5 or 0.4: 1 comes first.
    queries = baselines.Queries([0, 0], [[-1], [-1]], [0, 0], [0, 4, 8], [1, 2, 2, 2] * 2)
    return window, queries, [np.array([1]), np.array([1])]


def test_tune_picks_the_best_point_and_the_first_of_ties():
    window, queries, relevant = buy_again_case()
    test = baselines.Queries([0, -1, 0], np.full((3, 2), -1), [0, 0, 0], [0, 1, 1, 2], [3, 4])
    tuned = tuning.tune(
        "buy_again", {"decay": (1.0, 0.5, 0.4)}, window, queries, test, relevant, None, (5,)
    )
    ndcg = [v["metrics"]["ndcg@10"] for v in tuned.validation]
    np.testing.assert_allclose(ndcg, [1 / np.log2(3), 1.0, 1.0])
    assert tuned.params == {"decay": 0.5} and tuned.metrics["ndcg@10"] == 1.0
    assert [v["params"] for v in tuned.validation] == [{"decay": d} for d in (1.0, 0.5, 0.4)]
    # The returned score function serves the test queries.
    assert tuned.score_fn(0, 3).shape == (3, 5)
    assert np.argmax(tuned.score_fn(0, 3)[0]) == 3 and np.argmax(tuned.score_fn(0, 3)[2]) == 4


def test_resolve_grids_names_the_bad_config_key():
    grids = tuning.resolve_grids({"ease": {"l2": [10, 20]}})
    assert grids["ease"] == {"l2": (10, 20)} and grids["als"] == tuning.DEFAULT_GRIDS["als"]
    cases = [
        ({"ease": {"l2": [-1.0]}}, r"`eval.baseline_grids.ease.l2` holds a bad value -1.0: `l2`"),
        ({"item_knn": {"weighting": ["dice"]}}, r"`eval.baseline_grids.item_knn.weighting` holds"),
        ({"knn": {}}, r"`eval.baseline_grids.knn`: unknown baseline; expected one of"),
        ({"ease": {"lambda": [1]}}, r"`eval.baseline_grids.ease.lambda`: unknown parameter"),
        ({"als": {"factors": []}}, r"`eval.baseline_grids.als.factors` must be a non-empty list"),
        ({"hybrid": [0.5]}, r"`eval.baseline_grids.hybrid` must map parameters to lists"),
    ]
    for grids, message in cases:
        with pytest.raises(errors.ConfigError, match=message):
            tuning.resolve_grids(grids)


def test_config_carries_baseline_grids():
    config = config_lib.load(None, ["eval.baseline_grids={buy_again: {decay: [0.7]}}"])
    assert config.eval.baseline_grids == {"buy_again": {"decay": [0.7]}}
    assert config_lib.load(None).eval.baseline_grids == {}


def small_config(exclude_seen):
    config = config_lib.load(None)
    grids = {"buy_again": {"decay": [0.5, 1.0]}, "item_knn": {"neighbors": [2]}}
    grids["hybrid"] = {"weight": [0.5]}
    return dataclasses.replace(
        config,
        eval=dataclasses.replace(config.eval, baseline_grids=grids, exclude_seen=exclude_seen),
    )


@pytest.mark.parametrize("exclude_seen", [False, True])
def test_tuned_scorers_end_to_end(exclude_seen, capsys):
    prepared = hand_prepared()
    tuned = baselines.tuned_scorers(
        prepared, small_config(exclude_seen), ["most_popular", "hybrid"], progress=True
    )
    assert list(tuned) == ["most_popular", "hybrid"]
    assert tuned["hybrid"].params == {
        "weight": 0.5, "buy_again.decay": 0.5, "item_knn.neighbors": 2,
        "item_knn.weighting": "cosine",
    }  # fmt: skip
    assert "[baselines] hybrid: {'weight': 0.5" in capsys.readouterr().out
    assert tuned["hybrid"].score_fn(0, len(prepared.test)).shape == (len(prepared.test), 4)
    # Validation is scored as test is: with exclusion exactly when `eval.exclude_seen` is on.
    relevant = [prepared.catalog_index(r) for r in prepared.validation.relevant]
    seen = [prepared.catalog_index(s) for s in prepared.validation.seen]
    popularity = baselines.MostPopular([1, 1, 1, 1])  # one training buy per item
    expected = protocol.evaluate(
        popularity, relevant, 4, ks=(10, 50, 100), exclude=seen if exclude_seen else None
    )
    assert tuned["most_popular"].metrics == expected["all"]


def test_tuned_scorers_rejects_unknown_names():
    with pytest.raises(
        ValueError, match=r"`names` must be drawn from .*received \['id_two_tower'\]"
    ):
        baselines.tuned_scorers(hand_prepared(), small_config(False), ["id_two_tower"])


def test_refit_baselines_score_test_after_fitting_on_validation_too():
    # w is bought twice more in the validation window: a refitted popularity ranks it first.
    prepared = hand_prepared(extra_rows=[("b", "w", 14), ("a", "w", 15)])
    config = small_config(False)
    refit = baselines.tuned_scorers(prepared, config, ["most_popular"], progress=False)
    kept = dataclasses.replace(config, eval=dataclasses.replace(config.eval, refit_baselines=False))
    train_only = baselines.tuned_scorers(prepared, kept, ["most_popular"], progress=False)
    n = len(prepared.test)
    assert np.argmax(refit["most_popular"].score_fn(0, n)[0]) == 3  # w
    row = train_only["most_popular"].score_fn(0, n)[0]
    assert np.all(row == row[0])  # one training event per item: no favourite
    window, test = baselines.inputs.from_prepared(prepared, prepared.test, window_end=20)
    assert window.num_users == 3 and window.item.size == 10  # training + validation events
    assert test.profile_offsets[-1] > 0


def test_tuning_validates_on_the_catalog_known_at_the_validation_start():
    # v first appears in validation: it cannot be recommended there, so it cannot be relevant.
    prepared = hand_prepared(extra_rows=[("a", "v", 16)])
    prepared.table = types.SimpleNamespace(item_ids=np.array([*ITEMS, "v"], dtype=object))
    index = pd.Index(prepared.table.item_ids)
    prepared.catalog_index = lambda ids: index.get_indexer(
        np.asarray(ids, dtype=object).ravel()
    ).reshape(np.shape(ids))
    first = prepared.dataset.interactions.groupby("item_id")["timestamp"].min()
    prepared.available_at = lambda boundary: (
        pd.Series(prepared.table.item_ids).map(first).to_numpy() < boundary
    )
    tuned = baselines.tuned_scorers(prepared, small_config(False), ["most_popular"], progress=False)
    # Validation queries: a@11, b@11, a@12, b@13, a@16 (v only) -> the last one is dropped.
    assert tuned["most_popular"].metrics["queries"] == len(prepared.validation.relevant) - 1
