"""The serving graph over an IVF item index, against the same graph with exact search."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.exporting.conftest import rank_request, request
from tfrec import config as config_lib
from tfrec import errors
from tfrec.exporting import ivf_build, ivf_index, signatures
from tfrec.pipelines import export as export_run

TYPES = ["view", "cart", "purchase"]


def _call(fn, inputs):
    out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def _with_index(trained, **index):
    config = dataclasses.replace(
        trained.config, index=config_lib.IndexConfig(kind="ivf", seed=0, **index)
    )
    return dataclasses.replace(trained, config=config)


@pytest.fixture(scope="module")
def modules(run):
    """Exact search; IVF probing every partition (exact too); IVF probing one partition."""
    trained, catalog = run.trained, run.trained.catalog
    nlist = 8
    every = _with_index(trained, nlist=nlist, nprobe=nlist)
    one = _with_index(trained, nlist=nlist, nprobe=1)
    return {
        "exact": export_run.serving_module(trained, catalog),
        "every": export_run.serving_module(every, catalog),
        "one": export_run.serving_module(one, catalog),
        "int8": export_run.serving_module(
            _with_index(trained, nlist=nlist, nprobe=nlist, quantisation="int8", rescore=64),
            catalog,
        ),
    }


def _requests(run, count, seed):
    """Random requests: known, unknown and repeated recent items, ragged, mixed exclusions."""
    rng = np.random.default_rng(seed)
    items = list(run.trained.catalog.item_ids)
    users = list(run.prepared.spec.users) + ["stranger"]
    out = []
    for _ in range(count):
        events = [
            (str(rng.choice(items + ["no-such-item"])), str(rng.choice(TYPES)))
            for _ in range(int(rng.integers(0, 12)))
        ]
        if events and rng.random() < 0.5:
            events.append(events[0])  # the same item twice: the prior adds both
        out.append((str(rng.choice(users)), events, bool(rng.random() < 0.5)))
    return out


def test_an_index_probing_every_partition_answers_as_exact_search(run, modules):
    assert modules["every"].item_index is not None and modules["every"].vectors is None
    assert modules["exact"].item_index is None
    cases = _requests(run, 12, seed=0)
    users = [u for u, _, _ in cases]
    histories = [e for _, e, _ in cases]
    exclude = [x for _, _, x in cases]
    for signature, k in (("retrieve", 10), ("retrieve", 40), ("recommend", 7)):
        inputs = request(users, histories, k=k, exclude_recent=exclude)
        exact = _call(getattr(modules["exact"], signature), inputs)
        # int8 re-scores its short list from float vectors: exact up to the list's edge.
        for name in ("every", "int8") if signature == "retrieve" else ("every",):
            got = _call(getattr(modules[name], signature), inputs)
            assert got["item_ids"].tolist() == exact["item_ids"].tolist(), (name, signature)
            np.testing.assert_allclose(got["scores"], exact["scores"], rtol=1e-5, atol=1e-5)
            if signature == "recommend":
                for key in ("explanation_item_ids", "explanation_positions"):
                    assert got[key].tolist() == exact[key].tolist(), (name, key)
    candidates = [list(run.trained.catalog.item_ids[:5]) + ["unknown-item"]] * len(cases)
    inputs = rank_request(request(users, histories), candidates)
    exact = _call(modules["exact"].rank, inputs)
    got = _call(modules["every"].rank, inputs)
    np.testing.assert_allclose(got["scores"], exact["scores"], rtol=1e-5, atol=1e-6)


def test_one_partition_is_approximate_but_scores_are_exact_and_recent_items_are_kept(run, modules):
    cases = _requests(run, 20, seed=1)
    users = [u for u, _, _ in cases]
    histories = [e for _, e, _ in cases]
    inputs = request(users, histories, k=20)
    exact = _call(modules["exact"].retrieve, inputs)
    one = _call(modules["one"].retrieve, inputs)
    assert one["item_ids"].tolist() != exact["item_ids"].tolist()  # the index is searched
    catalog = run.trained.catalog
    rows = {item: row for row, item in enumerate(catalog.item_ids)}
    prior = run.trained.prior
    for r, (user, events, _) in enumerate(cases):
        full = _call(modules["exact"].retrieve, request([user], [events], k=len(rows)))
        exact_score = dict(zip(full["item_ids"][0], full["scores"][0], strict=True))
        for item, score in zip(one["item_ids"][r], one["scores"][r], strict=True):
            if item:
                assert score == pytest.approx(exact_score[item], rel=1e-5, abs=1e-5)
        # The repeat prior's recent items are always candidates, whichever partition holds
        # them: the item bought most recently, strongly boosted, stays near the top.
        known = [i for i, _ in events[: run.prepared.spec.max_history] if i in rows]
        if prior.beta and known:
            boosted = max(known, key=lambda i: exact_score[i.encode()])
            rank_in_exact = list(full["item_ids"][0]).index(boosted.encode())
            if rank_in_exact < 20:
                assert boosted.encode() in one["item_ids"][r].tolist()


def test_export_with_an_ivf_index_serves_the_same_answers(run, modules, tmp_path):
    trained = _with_index(run.trained, nlist=8, nprobe=2)
    result = export_run.export(run.workdir, tmp_path, with_text=False, trained=trained)
    folder = result["models"]["tfrec"]
    loaded = tf.saved_model.load(folder)
    names = [name for name, _ in tf.train.list_variables(f"{folder}/variables/variables")]
    assert not any("item_vectors" in n for n in names)  # the index holds the vectors once
    assert any("centroids" in n for n in names)
    cases = _requests(run, 6, seed=2)
    inputs = request([u for u, _, _ in cases], [e for _, e, _ in cases], k=5)
    in_memory = export_run.serving_module(trained, trained.catalog)
    for signature in ("retrieve", "recommend"):
        served = _call(loaded.signatures[signature], inputs)
        expected = _call(getattr(in_memory, signature), inputs)
        assert served["item_ids"].tolist() == expected["item_ids"].tolist()


def test_an_empty_batch(modules):
    out = _call(modules["every"].retrieve, request([], [], k=3))
    assert out["item_ids"].shape == (0, 0)


def test_an_index_built_for_other_items_is_refused(run):
    catalog = run.trained.catalog
    other = ivf_build.build_ivf(
        catalog.vectors * 2.0, config_lib.IndexConfig(nlist=4), catalog.item_ids
    )
    with pytest.raises(errors.ConfigError, match="built for other items"):
        signatures.from_config(
            run.trained.config,
            run.trained.spec,
            run.trained.query_model,
            catalog,
            ranker=run.trained.ranker,
            item_index=other,
        )


def test_auto_chooses_by_catalog_size():
    config = config_lib.IndexConfig(min_items=100)
    assert ivf_build.choose(99, config) == ivf_build.BRUTE_FORCE
    assert ivf_build.choose(100, config) == ivf_build.IVF
    assert ivf_build.choose(10**7, dataclasses.replace(config, kind="brute_force")) == (
        ivf_build.BRUTE_FORCE
    )
    assert ivf_build.choose(5, dataclasses.replace(config, kind="ivf")) == ivf_build.IVF
    with pytest.raises(errors.ConfigError, match="`index.kind` must be one of"):
        config_lib.IndexConfig(kind="scann")
    assert isinstance(ivf_build.build_ivf(np.eye(4, dtype=np.float32)), ivf_index.IVFIndex)
