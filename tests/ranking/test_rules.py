"""Property tests of the business rules on random ranked lists."""

import numpy as np
import pytest

import tfrec  # noqa: F401
from tfrec.ranking import rules


def test_hand_case():
    keep = rules.apply_rules(
        ["a", "b", "c", "d"],
        [0.2, 0.9, 0.5, 0.8],
        ["x", "x", "y", "x"],
        k=3,
        recent_events=[("c", "purchase"), ("a", "view")],
        max_per_category=2,
    )
    # Score order b, d, c, a; c purchased; a would be the third "x".
    assert keep.tolist() == [1, 3]


@pytest.mark.parametrize("seed", range(25))
def test_random_lists_honour_every_rule(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 40))
    ids = [f"i{j}" for j in rng.integers(0, 30, n)]  # duplicates on purpose
    scores = rng.integers(0, 10, n).astype(float)  # ties on purpose
    categories = [["", "x", "y", "z"][j] for j in rng.integers(0, 4, n)]
    events = [
        (f"i{j}", ["view", "cart", "purchase"][t])
        for j, t in zip(rng.integers(0, 30, 10), rng.integers(0, 3, 10), strict=True)
    ]
    unavailable = [f"i{j}" for j in rng.integers(0, 30, 5)]
    cap = None if seed % 3 == 0 else int(rng.integers(1, 4))
    exclude_types = ("purchase", "cart") if seed % 2 else ("purchase",)
    k = int(rng.integers(0, 15))
    keep = rules.apply_rules(ids, scores, categories, k, events, exclude_types, unavailable, cap)

    chosen = [ids[p] for p in keep]
    banned = {i for i, e in events if e in exclude_types} | set(unavailable)
    assert len(keep) <= k and not set(chosen) & banned
    assert len(set(chosen)) == len(chosen)
    if cap is not None:
        for c in {"x", "y", "z"}:
            assert sum(categories[p] == c for p in keep) <= cap
    # Order preserved: the kept positions are exactly a greedy walk of the stable score order.
    order = np.argsort(-scores, kind="stable").tolist()
    assert keep.tolist() == sorted(keep.tolist(), key=order.index)
    # Nothing better was dropped without a reason.
    counts: dict = {}
    taken: set = set()
    for p in order[: order.index(keep[-1]) + 1] if len(keep) else []:
        capped = cap is not None and categories[p] != "" and counts.get(categories[p], 0) >= cap
        blocked = ids[p] in banned or ids[p] in taken or capped
        assert blocked == (p not in keep.tolist())
        if not blocked:
            taken.add(ids[p])
            counts[categories[p]] = counts.get(categories[p], 0) + 1


def test_validation_messages():
    with pytest.raises(ValueError, match="one entry per candidate, received lengths 2, 1, 2"):
        rules.apply_rules(["a", "b"], [1.0], ["x", "y"], k=1)
    with pytest.raises(ValueError, match="`max_per_category` must be a positive int or None"):
        rules.apply_rules(["a"], [1.0], ["x"], k=1, max_per_category=0)
