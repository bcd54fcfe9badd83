"""The full-catalog protocol against hand cases and a brute-force full-argsort reference."""

import math

import numpy as np
import pytest

from tfrec.evaluation import metrics, protocol


def fixed_scores(matrix):
    matrix = np.asarray(matrix, dtype=np.float64)
    return lambda start, end: matrix[start:end]


def reference(scores, relevant, ks, exclude=None, segments=None):
    """Pure-Python/NumPy reference: full argsort per query, pessimistic ties, loops everywhere."""
    n, m = scores.shape
    segments = {"all": (None, None), **(segments or {})}
    out, dropped = {}, {}
    for name, (q_mask, i_mask) in segments.items():
        per_query, lists, lost = [], [], 0
        for q in range(n):
            if q_mask is not None and not q_mask[q]:
                continue
            row = scores[q].copy()
            excluded = set() if exclude is None else {int(i) for i in exclude[q]}
            row[list(excluded)] = -np.inf
            rel = {int(i) for i in relevant[q]}
            if callable(i_mask):
                rel = {i for i in rel if i_mask(np.array([q]), np.array([i]))[0]}
            elif i_mask is not None:
                rel = {i for i in rel if i_mask[i]}
            if not rel:
                continue
            if not rel - excluded:
                lost += 1
                continue
            rel -= excluded
            order = np.argsort(-row, kind="stable")
            ranked = row[order]
            # Pessimistic: the last position among items scoring >= the relevant item's score.
            ranks = [int(np.flatnonzero(ranked >= row[i]).max()) + 1 for i in rel]
            values = {"mrr": 1.0 / min(ranks)}
            for k in ks:
                hits = [r for r in ranks if r <= k]
                ideal = sum(1 / math.log2(i + 1) for i in range(1, min(k, len(rel)) + 1))
                values[f"recall@{k}"] = len(hits) / min(k, len(rel))
                values[f"ndcg@{k}"] = sum(1 / math.log2(r + 1) for r in hits) / ideal
                values[f"hit_rate@{k}"] = float(bool(hits))
            per_query.append(values)
            lists.append(np.lexsort((np.arange(m), -row)))  # ties by lower index
        result = {key: float(np.mean([v[key] for v in per_query])) for key in per_query[0]}
        for k in ks:
            result[f"coverage@{k}"] = len({int(i) for lst in lists for i in lst[:k]}) / m
        result["queries"] = len(per_query)
        out[name], dropped[name] = result, lost
    return out, dropped


@pytest.mark.parametrize("with_exclusion", [False, True])
@pytest.mark.parametrize("ks", [(1, 5, 10), (3, 64)])  # 64 > num_items: the whole catalog
def test_matches_brute_force_reference_with_ties(ks, with_exclusion, monkeypatch):
    rng = np.random.default_rng(0)
    n, m = 120, 40
    # Half the rows are heavily tied integers, half continuous with a few forced ties.
    scores = rng.normal(size=(n, m))
    scores[: n // 2] = rng.integers(0, 4, size=(n // 2, m))
    scores[n // 2 :, :5] = scores[n // 2 :, 5:10]
    relevant = [rng.choice(m, size=rng.integers(1, 6), replace=True) for _ in range(n)]
    exclude = None
    if with_exclusion:
        exclude = [rng.choice(m, size=rng.integers(0, 8)) for _ in range(n)]
        exclude[3] = np.asarray(relevant[3])  # every relevant item excluded -> dropped
    segments = {
        "cold_items": (None, rng.random(m) < 0.3),
        "cold_users": (rng.random(n) < 0.4, None),
        "both": (rng.random(n) < 0.5, rng.random(m) < 0.5),
        # A pair mask: which relevant item counts depends on its query.
        "pairs": (None, lambda q, i: (q + i) % 3 == 0),
    }
    # Small chunks and odd batches exercise every boundary.
    monkeypatch.setattr(protocol, "_CHUNK_ELEMENTS", 3 * m)
    got = protocol.evaluate(
        fixed_scores(scores), relevant, m, ks=ks, exclude=exclude, segments=segments, batch_size=17
    )
    want, want_dropped = reference(scores, relevant, ks, exclude, segments)
    assert list(got.metrics) == ["all", "cold_items", "cold_users", "both", "pairs"]
    assert got.dropped == want_dropped
    assert got.exclude_seen is with_exclusion
    if with_exclusion:
        assert got.dropped["all"] >= 1
    for name, values in want.items():
        assert set(got[name]) == set(values)
        for key, value in values.items():
            assert got[name][key] == pytest.approx(value, abs=1e-12), (name, key)


def test_hand_case_with_ties():
    # Scores [0.9, 0.1, 0.5, 0.5, 0.3]; relevant {3, 4}.
    # Item 3 (0.5) ties with item 2: items >= 0.5 are {0, 2, 3} -> pessimistic rank 3.
    # Item 4 (0.3): items >= 0.3 are {0, 2, 3, 4} -> rank 4.
    # Recall@2 = 0; Recall@3 = 1 / min(3, 2) = 0.5; MRR = 1/3;
    # NDCG@3 = (1/log2 4) / (1 + 1/log2 3) = 0.5 / 1.63093 = 0.30657.
    # Top-3 list (ties by index) = [0, 2, 3] -> coverage@3 = 3/5.
    r = protocol.evaluate(fixed_scores([[0.9, 0.1, 0.5, 0.5, 0.3]]), [[3, 4, 3]], 5, ks=(2, 3))
    m = r["all"]
    assert (m["recall@2"], m["recall@3"], m["hit_rate@2"], m["hit_rate@3"]) == (0, 0.5, 0, 1)
    assert m["mrr"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx(0.306574, abs=1e-6)
    assert m["coverage@3"] == pytest.approx(0.6)
    assert m["queries"] == 1


def test_constant_scorer_gets_pessimistic_rank():
    # Every item ties, so each relevant item ranks last (num_items = 50): MRR = 1/50, no hits;
    # at k = num_items everything is found. Lists are [0..k-1] for all: coverage@10 = 10/50.
    rng = np.random.default_rng(1)
    relevant = [rng.choice(50, size=3, replace=False) for _ in range(30)]
    r = protocol.evaluate(lambda s, e: np.zeros((e - s, 50), np.float32), relevant, 50, ks=(10, 50))
    m = r["all"]
    assert m["mrr"] == pytest.approx(1 / 50)
    assert m["recall@10"] == m["ndcg@10"] == m["hit_rate@10"] == 0.0
    assert m["recall@50"] == m["hit_rate@50"] == 1.0
    assert m["coverage@10"] == pytest.approx(0.2)


def test_exclusion_removes_items_from_ranking_and_relevant_set():
    scores = [[5, 4, 3, 2, 1], [5, 4, 3, 2, 1]]
    relevant = [[0, 2], [1]]
    # Without exclusion, query 0: ranks 1 and 3 -> recall@2 = 1/2; query 1: rank 2 -> 1/1.
    plain = protocol.evaluate(fixed_scores(scores), relevant, 5, ks=(2,))
    assert plain["all"]["recall@2"] == pytest.approx(0.75)
    assert not plain.exclude_seen and plain.dropped == {"all": 0}
    # Excluding {0, 1} from query 0: item 0 leaves the relevant set; items 0, 1 score -inf, so
    # item 2 ranks 1 -> recall@2 = 1, MRR = 1. Query 1 loses its only item -> dropped.
    r = protocol.evaluate(fixed_scores(scores), relevant, 5, ks=(2,), exclude=[[0, 1], [1]])
    assert r.exclude_seen and r.dropped == {"all": 1}
    assert r["all"]["queries"] == 1
    assert r["all"]["recall@2"] == 1.0 and r["all"]["mrr"] == 1.0
    # Excluded items never appear in top lists: list of query 0 is [2, 3] -> coverage 2/5.
    assert r["all"]["coverage@2"] == pytest.approx(0.4)


def test_catalog_mask_removes_unlisted_items_from_ranking_and_relevance():
    scores = [[1, 5, 4, 3, 2], [1, 5, 4, 3, 2]]
    relevant = [[1, 2], [1]]
    available = np.array([True, False, True, True, True])  # item 1 not listed yet
    r = protocol.evaluate(fixed_scores(scores), relevant, 5, ks=(1,), available=available)
    # Query 0: item 1 leaves the relevant set, item 2 now ranks first. Query 1 is dropped.
    assert r["all"]["queries"] == 1 and r.dropped == {"all": 1}
    assert r["all"]["recall@1"] == 1.0 and r["all"]["mrr"] == 1.0
    assert r.num_items == 4 and not r.exclude_seen
    assert r["all"]["coverage@1"] == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match=r"`available` must be bool \[5\]"):
        protocol.evaluate(fixed_scores(scores), relevant, 5, available=np.ones(4, bool))


def test_segment_masks():
    # Catalog of 4, scores [4, 3, 2, 1] for all queries, so rank(item) = item + 1.
    # q0 relevant {0, 3}; q1 {1}; q2 {2, 3}. Cold items {2, 3}; cold user: q0 only.
    # all:        MRR = (1 + 1/2 + 1/3) / 3 = 0.61111
    # cold_items: q0 -> {3}: MRR 1/4, recall@3 0; q2 -> {2, 3}: MRR 1/3, recall@3 1/min(3,2)
    #             = 0.5; q1 is not in the segment. MRR = 0.29167, recall@3 = 0.25.
    # cold_users: q0 with {0, 3}: MRR 1, recall@3 = 1/2; coverage@1 = |{0}| / 4.
    scores = np.tile([4.0, 3.0, 2.0, 1.0], (3, 1))
    segments = {
        "cold_items": (None, np.array([False, False, True, True])),
        "cold_users": (np.array([True, False, False]), None),
    }
    r = protocol.evaluate(
        fixed_scores(scores), [[0, 3], [1], [2, 3]], 4, ks=(1, 3), segments=segments
    )
    assert r["all"]["mrr"] == pytest.approx(0.611111, abs=1e-6)
    assert r["cold_items"]["queries"] == 2
    assert r["cold_items"]["mrr"] == pytest.approx((0.25 + 1 / 3) / 2)
    assert r["cold_items"]["recall@3"] == pytest.approx(0.25)
    assert r["cold_users"]["queries"] == 1
    assert r["cold_users"]["mrr"] == 1.0 and r["cold_users"]["recall@3"] == 0.5
    assert r["cold_users"]["coverage@1"] == 0.25


def test_empty_segment_reports_nan_and_zero_queries():
    r = protocol.evaluate(
        fixed_scores([[1.0, 0.0]]), [[0]], 2, ks=(1,), segments={"none": (np.array([False]), None)}
    )
    assert r["none"]["queries"] == 0 and math.isnan(r["none"]["mrr"])
    data = r.to_dict()
    assert data["metrics"]["none"]["mrr"] is None
    back = protocol.EvalResult.from_dict(data)
    assert math.isnan(back["none"]["mrr"]) and back["all"] == r["all"]
    assert back.ks == (1,) and back.exclude_seen is False


def test_score_fn_output_is_not_modified():
    scores = np.arange(12, dtype=np.float32).reshape(2, 6)
    before = scores.copy()
    protocol.evaluate(fixed_scores(scores), [[0], [1]], 6, ks=(2,), exclude=[[5], [4]])
    np.testing.assert_array_equal(scores, before)


def test_progress_bar_runs(capsys):
    r = protocol.evaluate(fixed_scores([[1.0, 0.0]] * 3), [[0]] * 3, 2, ks=(1,), progress=True)
    assert r["all"]["recall@1"] == 1.0
    assert "3/3" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_items": 0}, "`num_items` must be a positive int"),
        ({"ks": ()}, "`ks` must be a non-empty sequence"),
        ({"ks": (0,)}, "`ks` must be positive"),
        ({"relevant": [[0], []]}, r"`relevant\[1\]` must hold at least one item"),
        ({"relevant": [[0], [3]]}, r"`relevant\[1\]` must hold catalog indices in \[0, 3\)"),
        ({"exclude": [[0]]}, r"`exclude` must have one entry per query \(2\)"),
        ({"exclude": [[0], [-1]]}, r"`exclude\[1\]` must hold catalog indices"),
        ({"segments": {"all": (None, None)}}, "must not redefine `all`"),
        ({"segments": {"x": (np.ones(3, bool), None)}}, r"query mask must be bool \[2\]"),
        ({"segments": {"x": (None, np.ones(3))}}, r"item mask must be bool \[3\]"),
        ({"segments": {"x": (None, lambda q, i: q)}}, r"pair mask must return bool \[2\]"),
        ({"score_fn": lambda s, e: np.zeros((e - s, 4))}, r"must return scores of shape \(2, 3\)"),
        ({"score_fn": lambda s, e: np.full((e - s, 3), np.nan)}, "returned NaN"),
        ({"batch_size": 0}, "`batch_size` must be a positive int"),
    ],
)
def test_errors_name_the_argument(kwargs, message):
    args = {"score_fn": lambda s, e: np.zeros((e - s, 3)), "relevant": [[0], [1]], "num_items": 3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        protocol.evaluate(**args)


def test_top_k_matches_full_sort_on_hard_rows():
    # The group-maxima shortcut against a full lexsort, on rows that stress it: continuous,
    # heavy integer ties, constant, sorted (top items bunched), and mostly -inf (fewer finite
    # items than k, next to wide rows in the same chunk, so -inf padding could be confused).
    rng = np.random.default_rng(2)
    m, k = 3000, 50
    rows = [
        rng.normal(size=m),
        rng.integers(0, 4, size=m).astype(float),
        np.zeros(m),
        np.arange(m, dtype=float),
        np.where(rng.random(m) < 0.99, -np.inf, rng.normal(size=m)),
        np.r_[np.full(m - 10, 1.0), np.full(10, 2.0)],
    ]
    scores = np.stack(rows).astype(np.float32)
    top, ranks = metrics.top_k(scores, k)
    for row, got, got_ranks in zip(scores, top, ranks, strict=True):
        want = np.lexsort((np.arange(m), -row))[:k]
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_ranks, [(row >= row[i]).sum() for i in want])
