"""The Python `Recommender` answers exactly what the saved `recommend` signatures serve."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.exporting.conftest import assert_same_answer
from tfrec.pipelines import export as export_run
from tfrec.ranking import recommender as recommender_lib
from tfrec.ranking import requests

CAP = 2
TYPES = ["view", "cart", "purchase"]


@pytest.fixture(scope="module")
def capped(run, tmp_path_factory):
    """In-memory modules with a category cap, and their saved `recommend` signatures."""
    trained, config = run.trained, run.config
    recommend = dataclasses.replace(config.recommend, max_per_category=CAP)
    trained = dataclasses.replace(trained, config=dataclasses.replace(config, recommend=recommend))
    modules, served = [], []
    for text in (False, True):
        module = export_run.serving_module(trained, trained.catalog, with_text=text)
        path = str(tmp_path_factory.mktemp("capped") / "1")
        tf.saved_model.save(module, path, signatures=module.signatures())
        modules.append(module)
        served.append(tf.saved_model.load(path).signatures["recommend"])
    return recommender_lib.Recommender(*modules), served


def _random_requests(run, n, seed=0) -> list:
    """(user, events, k, query_text, now): known and unknown users and items, purchases."""
    rng = np.random.default_rng(seed)
    items = list(run.trained.catalog.item_ids)
    users = list(run.prepared.spec.users)
    words = sorted({w for t in run.trained.catalog.titles for w in str(t).lower().split()})
    found = []
    for i in range(n):
        user = str(rng.choice(users)) if rng.random() < 0.7 else f"stranger-{i}"
        events = [
            (
                str(rng.choice(items)) if rng.random() < 0.85 else f"ghost-{j}",
                str(rng.choice(TYPES)),
            )
            for j in range(int(rng.integers(0, 9)))
        ]
        query = " ".join(rng.choice(words, 2)) if rng.random() < 0.3 else None
        now = int(rng.integers(1_600_000_000, 1_800_000_000))
        found.append((user, events, int(rng.integers(1, 13)), query, now))
    return found


def test_served_answers_equal_the_recommender_on_random_requests(run, capped):
    rec, served = capped
    cases = _random_requests(run, 100)
    expected = [rec.recommend(u, e, k=k, query_text=q, now=t) for u, e, k, q, t in cases]
    # Served in two batches (without and with a query text), as a batching server would.
    got = [None] * len(cases)
    for text, signature in zip((False, True), served, strict=True):
        rows = [i for i, case in enumerate(cases) if bool(case[3]) == text]
        inputs = requests.stack(
            [
                requests.build(u, e, t, k, query_text=q)
                for u, e, k, q, t in map(cases.__getitem__, rows)
            ]
        )
        out = signature(**{name: tf.constant(v) for name, v in inputs.items()})
        out = {name: v.numpy() for name, v in out.items()}
        for row, i in enumerate(rows):
            got[i] = recommender_lib.response_rows({name: v[row] for name, v in out.items()})
    category = dict(zip(run.trained.catalog.item_ids, run.trained.catalog.categories, strict=True))
    full_categories = full_lists = cited = purchases = 0
    for case, a, b in zip(cases, got, expected, strict=True):
        assert_same_answer(a, b)
        user, events, k, _, _ = case
        # At most k: 4 categories capped at 2 each may leave fewer items than asked for.
        assert len(a) <= k
        full_lists += len(a) == k
        counts = collections.Counter(category[r["item_id"]] for r in a if category[r["item_id"]])
        assert max(counts.values(), default=0) <= CAP
        full_categories += CAP in counts.values()
        bought = {i for i, e in events if e == "purchase"}
        purchases += bool(bought)
        assert not bought & {r["item_id"] for r in a}
        for r in a:
            cited += len(r["explanation"])
            for reason in r["explanation"]:
                assert events[reason["position"]] == (reason["item_id"], reason["event_type"])
    # The random requests exercise the cap, purchases, query texts and explanations.
    assert full_categories and full_lists and purchases and cited
    assert 10 < sum(bool(c[3]) for c in cases) < 90
