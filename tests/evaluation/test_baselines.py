"""Popularity and ALS baselines as protocol score functions."""

import numpy as np
import pytest

from tfrec.evaluation import baselines, protocol


def test_most_popular_scores_every_query_alike():
    pop = baselines.MostPopular.from_interactions([2, 2, 0, 2, 1, 0], num_items=4)
    # Counts: item 0 -> 2, item 1 -> 1, item 2 -> 3, item 3 -> 0.
    np.testing.assert_array_equal(pop(3, 5), [[2, 1, 3, 0], [2, 1, 3, 0]])
    assert pop.scorer(np.array([7, 8])) is pop
    # Through the protocol: relevant item 0 ranks 2nd (behind item 2) -> MRR 0.5, recall@1 0.
    r = protocol.evaluate(pop, [[0], [2]], 4, ks=(1,))
    assert r["all"]["mrr"] == pytest.approx(0.75) and r["all"]["recall@1"] == 0.5


def test_most_popular_validates_counts():
    with pytest.raises(ValueError, match="`train_item_counts` must be a non-empty 1-D array"):
        baselines.MostPopular([[1, 2]])
    with pytest.raises(ValueError, match="`train_item_counts` must hold finite counts >= 0"):
        baselines.MostPopular([1, -1])


def test_als_validates_hyperparameters():
    with pytest.raises(ValueError, match="`factors` must be a positive int, received 0"):
        baselines.ALSBaseline(factors=0)
    with pytest.raises(ValueError, match="`regularization` must be a float >= 0"):
        baselines.ALSBaseline(regularization=-1.0)
    with pytest.raises(ValueError, match="`ALSBaseline.scorer` needs a fitted model"):
        baselines.ALSBaseline().scorer([0])


def planted_interactions():
    """40 users in two taste groups: group g buys items 5g..5g+4, each user all but one of them.

    Items 10 and 11 are never bought. Returns (users, items, held-out item per user).
    """
    users, items, held = [], [], []
    for u in range(40):
        own = np.arange(5) + 5 * (u % 2)
        out = own[u % 5]
        held.append(out)
        for i in own[own != out]:
            users.append(u)
            items.append(i)
    return np.array(users), np.array(items), np.array(held)


@pytest.mark.skipif(not baselines.ALSBaseline.available(), reason="`implicit` is not installed")
def test_als_ranks_planted_items_above_others():
    users, items, held = planted_interactions()
    als = baselines.ALSBaseline(factors=4, regularization=0.01, iterations=20, seed=0)
    als.fit(users, items, num_users=41, num_items=12)
    scores = als.scorer(np.arange(40))(0, 40)
    for u in range(40):
        other_group = np.arange(5) + 5 * (1 - u % 2)
        # The held-out item of the user's own group beats every item of the other group.
        assert scores[u, held[u]] > scores[u, other_group].max(), u
    # Full protocol with exclusion of seen items: the held-out item is then the top one.
    seen = [items[users == u] for u in range(40)]
    r = protocol.evaluate(als.scorer(np.arange(40)), [[h] for h in held], 12, ks=(1,), exclude=seen)
    assert r["all"]["recall@1"] == 1.0


@pytest.mark.skipif(not baselines.ALSBaseline.available(), reason="`implicit` is not installed")
def test_als_unknown_users_fall_back_to_popularity():
    users, items, _ = planted_interactions()
    als = baselines.ALSBaseline(factors=4, iterations=5).fit(users, items, 41, 12)
    # -1, 40 (no training rows) and 99 (outside the fitted range) are all unknown.
    scores = als.scorer(np.array([-1, 40, 99, 0]))(0, 4)
    popularity = np.bincount(items, minlength=12)
    for row in scores[:3]:
        np.testing.assert_array_equal(row, popularity)
    assert not np.array_equal(scores[3], popularity)


@pytest.mark.skipif(not baselines.ALSBaseline.available(), reason="`implicit` is not installed")
def test_als_fit_validates_indices():
    with pytest.raises(ValueError, match=r"`item_indices` must lie in \[0, 3\)"):
        baselines.ALSBaseline().fit([0, 1], [0, 3], num_users=2, num_items=3)
