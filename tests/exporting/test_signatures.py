"""The exported signatures against the in-process Keras towers, ranker and Recommender."""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np
import pytest
import tensorflow as tf

from tests.exporting.conftest import assert_same_answer, rank_request, request
from tfrec import errors, features
from tfrec.exporting import signatures
from tfrec.pipelines import export as export_run
from tfrec.ranking import explain, rules
from tfrec.ranking import recommender as recommender_lib


def _call(fn, inputs):
    out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def served(run):
    return tf.saved_model.load(run.result["models"]["tfrec"]).signatures


def _keras_scores(run, user, events, hour=12, day=2):
    """Query-tower scores of one request against the catalog, computed with NumPy padding."""
    spec = run.prepared.spec
    seen = events[: spec.max_history]
    pad = spec.max_history - len(seen)
    batch = {
        features.USER_ID: tf.constant([user]),
        features.HISTORY_ITEM_IDS: tf.constant([[i for i, _ in seen] + [""] * pad]),
        features.HISTORY_EVENT_TYPES: tf.constant([[e for _, e in seen] + [""] * pad]),
        features.HOUR_OF_DAY: tf.constant([hour], tf.int32),
        features.DAY_OF_WEEK: tf.constant([day], tf.int32),
        features.QUERY_TOKEN_IDS: tf.zeros([1, spec.query_text_length], tf.int32),
    }
    query = run.model.query_model(batch, training=False).numpy()[0]
    catalog = run.trained.catalog
    rows = {item: row for row, item in enumerate(catalog.item_ids)}
    history = np.array([[rows.get(i, -1) for i, _ in seen] + [-1] * pad])
    return catalog.vectors @ query + run.trained.prior.weights(history, len(catalog.item_ids))[0]


TYPES = ["view", "cart", "purchase"]


def _events(run, n, offset=0):
    items = run.trained.catalog.item_ids
    return [(items[offset + i], TYPES[i % 3]) for i in range(n)]


def test_retrieve_matches_keras_top_k_with_ragged_histories(run, served):
    spec = run.prepared.spec
    histories = [_events(run, spec.max_history + 3), _events(run, 2, 7), []]
    users = [spec.users[0], spec.users[1], "never-seen-user"]
    out = _call(served["retrieve"], request(users, histories, k=8))
    assert out["item_ids"].shape == (3, 8) and out["scores"].dtype == np.float32
    ids = run.trained.catalog.item_ids
    for row, (user, events) in enumerate(zip(users, histories, strict=True)):
        scores = _keras_scores(run, user, events)
        expected = ids[np.argsort(-scores, kind="stable")[:8]]
        assert [x.decode() for x in out["item_ids"][row]] == list(expected)
        np.testing.assert_allclose(out["scores"][row], np.sort(scores)[::-1][:8], atol=1e-5)
        titles = run.trained.catalog.titles[np.argsort(-scores, kind="stable")[:8]]
        assert [t.decode() for t in out["titles"][row]] == list(titles)


def test_oov_history_items_and_empty_batch_width(run, served):
    out = _call(served["retrieve"], request(["nobody"], [[("no-such-item", "zap")]], k=3))
    assert out["item_ids"].shape == (1, 3) and all(out["item_ids"][0])
    empty = _call(served["retrieve"], request(["nobody", "u?"], [[], []], k=3))
    assert empty["item_ids"].shape == (2, 3)


def test_exclude_recent_drops_every_recent_item(run, served):
    user = run.prepared.spec.users[0]
    plain = _call(served["retrieve"], request([user], [[]], k=5))
    top = [i.decode() for i in plain["item_ids"][0][:2]]
    events = [(top[0], "view"), (top[1], "cart")]
    kept = _call(served["retrieve"], request([user], [events], k=10))
    dropped = _call(served["retrieve"], request([user], [events], k=10, exclude_recent=True))
    dropped_ids = [i.decode() for i in dropped["item_ids"][0]]
    assert not set(top) & set(dropped_ids)
    assert len(set(dropped_ids)) == 10
    assert kept["item_ids"].shape == dropped["item_ids"].shape


def test_rank_matches_the_ranking_network(run, served):
    spec = run.prepared.spec
    catalog = run.trained.catalog
    candidates = list(catalog.item_ids[:4]) + ["unknown-item"]
    events = _events(run, 3, 10)
    inputs = rank_request(request([spec.users[0]], [events]), [candidates])
    out = _call(served["rank"], inputs)
    pad = spec.max_history - len(events)
    rows = catalog.item_ids.tolist()
    batch = {
        features.USER_ID: tf.constant([spec.users[0]] * 5),
        features.ITEM_ID: tf.constant(candidates),
        features.HOUR_OF_DAY: tf.fill([5], 12),
        features.DAY_OF_WEEK: tf.fill([5], 2),
        features.HISTORY_ITEM_IDS: tf.constant([[i for i, _ in events] + [""] * pad] * 5),
        features.HISTORY_EVENT_TYPES: tf.constant([[e for _, e in events] + [""] * pad] * 5),
        features.ITEM_CATEGORY: tf.constant(
            [catalog.categories[rows.index(c)] if c in rows else "" for c in candidates]
        ),
        features.ITEM_PRICE: tf.constant(
            [catalog.prices[rows.index(c)] if c in rows else 0.0 for c in candidates]
        ),
    }
    if features.RETRIEVAL_SCORE in run.ranker.network.input:
        first_stage = _keras_scores(run, spec.users[0], events)
        batch[features.RETRIEVAL_SCORE] = tf.constant(
            [first_stage[rows.index(c)] if c in rows else 0.0 for c in candidates], tf.float32
        )
    weights = {h: 1.0 for h in run.ranker.heads}
    expected = recommender_lib.combined_score(run.ranker.network(batch), weights)
    np.testing.assert_allclose(out["scores"][0], expected, rtol=1e-5, atol=1e-6)
    for head in run.ranker.heads:
        assert out[f"{head}_scores"].shape == (1, 5)


def _reference(run, user, events, k, max_per_category=None, exclude=()) -> list:
    """The two-stage pipeline in NumPy, from the Keras towers and ranker: the retrieval top N
    by `_keras_scores`, the network's combined head score, `Blend.combine` over the eligible
    candidates, `rules.apply_rules` and `explain.Explainer`."""
    catalog, config = run.trained.catalog, run.config
    spec = run.prepared.spec
    scores = _keras_scores(run, user, events)
    top = np.argsort(-scores, kind="stable")[: config.recommend.retrieve_n]
    ids, retrieval = catalog.item_ids[top], scores[top]
    n, seen = len(top), events[: spec.max_history]
    pad = spec.max_history - len(seen)
    batch = {
        features.USER_ID: tf.constant([user] * n),
        features.ITEM_ID: tf.constant(list(ids)),
        features.HOUR_OF_DAY: tf.fill([n], 12),
        features.DAY_OF_WEEK: tf.fill([n], 2),
        features.HISTORY_ITEM_IDS: tf.constant([[i for i, _ in seen] + [""] * pad] * n),
        features.HISTORY_EVENT_TYPES: tf.constant([[e for _, e in seen] + [""] * pad] * n),
        features.ITEM_CATEGORY: tf.constant(list(catalog.categories[top])),
        features.ITEM_PRICE: tf.constant(catalog.prices[top]),
        features.RETRIEVAL_SCORE: tf.constant(retrieval, tf.float32),
    }
    weights = {h: float(config.ranking.loss_weights.get(h, 1.0)) for h in run.ranker.heads}
    ranker = recommender_lib.combined_score(run.ranker.network(batch), weights)
    banned = rules.excluded_items(events, config.recommend.exclude_event_types) | set(exclude)
    eligible = np.array([i not in banned for i in ids])
    final = run.trained.blend.combine(retrieval[None], ranker[None], eligible[None])[0]
    keep = rules.apply_rules(
        ids,
        final,
        catalog.categories[top],
        k,
        recent_events=events,
        exclude_event_types=config.recommend.exclude_event_types,
        unavailable=exclude,
        max_per_category=max_per_category,
    )
    explainer = explain.Explainer(catalog.item_ids, catalog.vectors)
    reasons = explainer.explain_many(list(ids[keep]), events)
    return [
        {
            "item_id": ids[p],
            "score": final[p],
            "ranker_score": ranker[p],
            "retrieval_score": retrieval[p],
            "explanation": [dataclasses.asdict(r) for r in why],
        }
        for p, why in zip(keep, reasons, strict=True)
    ]


def _recommender(run, max_per_category=None) -> recommender_lib.Recommender:
    trained = run.trained
    if max_per_category is not None:
        config = trained.config
        capped = dataclasses.replace(config.recommend, max_per_category=max_per_category)
        trained = dataclasses.replace(trained, config=dataclasses.replace(config, recommend=capped))
    return recommender_lib.Recommender(export_run.serving_module(trained, trained.catalog))


# 2024-01-03 is a Wednesday (day 2); 12:00 UTC, as `request`'s default.
NOW = datetime.datetime(2024, 1, 3, 12, tzinfo=datetime.UTC)


@pytest.mark.parametrize("max_per_category", [None, 1])
def test_recommend_matches_the_numpy_pipeline(run, served, max_per_category):
    spec, items = run.prepared.spec, run.trained.catalog.item_ids
    rec = _recommender(run, max_per_category)
    rng = np.random.default_rng(0)
    cases = [(spec.users[0], _events(run, 4, 3), ()), ("nobody", [], ())]
    for _ in range(6):
        events = [
            (str(rng.choice(list(items[:40]) + ["no-such-item"])), str(rng.choice(TYPES)))
            for _ in range(int(rng.integers(0, 9)))
        ]
        exclude = tuple(rng.choice(items[:40], size=int(rng.integers(0, 4)), replace=False))
        cases.append((str(rng.choice(list(spec.users) + ["stranger"])), events, exclude))
    cited = 0
    for user, events, exclude in cases:
        expected = _reference(run, user, events, 6, max_per_category, exclude)
        got = rec.recommend(user, events, k=6, exclude=exclude, now=NOW)
        assert_same_answer(got, expected)
        assert not {r["item_id"] for r in got} & set(exclude)
        cited += sum(len(r["explanation"]) for r in got)
        if max_per_category is None and not exclude:
            out = _call(served["recommend"], request([user], [events], k=6))
            assert [i.decode() for i in out["item_ids"][0] if i] == [r["item_id"] for r in got]
    assert cited, "no explanation was exercised"


def test_recommend_never_reshows_purchases_and_reacts_to_new_events(run, served):
    user = run.prepared.spec.users[0]
    first = _call(served["recommend"], request([user], [[]], k=5))
    top = [i.decode() for i in first["item_ids"][0]]
    bought = _call(served["recommend"], request([user], [[(top[0], "purchase")]], k=5))
    assert top[0] not in [i.decode() for i in bought["item_ids"][0]]
    # Real time: one more recent event in the request changes the list at once.
    viewed = _call(served["recommend"], request([user], [[(top[0], "view")]], k=5))
    assert viewed["item_ids"][0].tolist() != first["item_ids"][0].tolist()


@pytest.mark.parametrize("signature", ["retrieve", "recommend"])
def test_each_row_has_its_own_k_and_exclude_recent(run, served, signature):
    user = run.prepared.spec.users[0]
    top = _call(served[signature], request([user], [[]], k=3))["item_ids"][0]
    events = [(top[0].decode(), "view")]
    rows = [{"k": 2, "exclude_recent": True}, {"k": 6, "exclude_recent": False}]
    out = _call(
        served[signature],
        request(
            [user, user],
            [events, events],
            k=[r["k"] for r in rows],
            exclude_recent=[r["exclude_recent"] for r in rows],
        ),
    )
    # One width for the batch: the largest k. Slots past a row's own k are padding.
    assert out["item_ids"].shape == out["scores"].shape == (2, 6)
    for i, row in enumerate(rows):
        alone = _call(served[signature], request([user], [events], **row))
        assert out["item_ids"][i, : row["k"]].tolist() == alone["item_ids"][0].tolist()
        np.testing.assert_allclose(out["scores"][i, : row["k"]], alone["scores"][0], rtol=1e-6)
    assert out["item_ids"][0, 2:].tolist() == [b""] * 4
    assert out["titles"][0, 2:].tolist() == [b""] * 4
    assert (out["scores"][0, 2:] == np.finfo(np.float32).min).all()
    assert top[0] not in out["item_ids"][0].tolist()  # row 0 excludes its recent item


def test_k_must_be_positive_in_every_row(served):
    with pytest.raises(tf.errors.InvalidArgumentError, match="`k` must be >= 1 in every row"):
        _call(served["retrieve"], request(["u", "v"], [[], []], k=[3, 0]))
    inputs = request(["u", "v"], [[], []], k=3)
    inputs["k"] = np.array([3], np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`k` must have one row per"):
        _call(served["recommend"], inputs)


def test_empty_batch(served):
    out = _call(served["retrieve"], request([], [], k=3))
    assert out["item_ids"].shape == (0, 0)


def test_recommend_caps_items_per_category(run):
    spec, catalog, trained = run.prepared.spec, run.trained.catalog, run.trained
    rec = _recommender(run, max_per_category=1)
    user, events = spec.users[0], _events(run, 4, 3)
    ids = [r["item_id"] for r in rec.recommend(user, events, k=6, now=NOW)]
    category = dict(zip(catalog.item_ids, catalog.categories, strict=True))
    shown = [category[i] for i in ids if category[i]]
    assert len(shown) == len(set(shown)) >= 2  # categories exist, and none repeats
    with pytest.raises(errors.ConfigError, match="`recommend.max_per_category` must be"):
        signatures.ServingModule(
            trained.query_model, catalog, spec.max_history, 4, max_per_category=0
        )


def test_titles_and_ids_need_not_be_ascii(run):
    """Catalogs of real shops hold any Unicode: strings go into the graph as UTF-8."""
    catalog = run.trained.catalog
    titles = catalog.titles.copy()
    ids = catalog.item_ids.copy()
    titles[0], ids[0] = "Saxophone strap · cuir doré 🎷", "sku-été-1"
    unicode = dataclasses.replace(catalog, titles=titles, item_ids=ids)
    module = export_run.serving_module(run.trained, unicode)
    history = [("sku-été-1", "purchase")]
    out = _call(module.retrieve, request(["never-seen-user"], [history], k=len(ids)))
    found = [x.decode("utf-8") for x in out["item_ids"][0]]
    assert "sku-été-1" in found
    row = found.index("sku-été-1")
    assert out["titles"][0][row].decode("utf-8") == "Saxophone strap · cuir doré 🎷"
