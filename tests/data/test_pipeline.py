"""Tests of the tf.data pipelines: spec conformance, preprocessing parity, padding, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from tests.data.helpers_pipeline import DAY, catalog, data_config, interactions, shop
from tfrec import errors, features
from tfrec.data import examples as examples_lib
from tfrec.data import pipeline, vocab

END = 10**9


@pytest.fixture(scope="module")
def spec():
    log = shop()
    return vocab.build_feature_spec(log[log["timestamp"] < 6 * DAY], catalog(), data_config())


@pytest.fixture(scope="module")
def table(spec):
    return vocab.build_item_table(catalog(), spec)


@pytest.fixture(scope="module")
def examples():
    return examples_lib.build_examples(shop(), 0, END, 3)


def _numpy(batch):
    return {name: value.numpy() for name, value in batch.items()}


def _rows(dataset):
    """Every element of a batched dataset, unbatched, as a list of dicts of numpy values."""
    return [_numpy(x) for x in dataset.unbatch()]


def _assert_rows_equal(left, right):
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_element_spec_matches_feature_spec(examples, table, spec):
    ds = pipeline.retrieval_dataset(examples, table, spec, 4, drop_remainder=True)
    expected = spec.tensor_specs()
    assert set(ds.element_spec) == set(features.QUERY_FEATURES + features.CANDIDATE_FEATURES)
    for name, got in ds.element_spec.items():
        assert got.dtype == expected[name].dtype, name
        assert got.shape == [4] + expected[name].shape, name
    for batch in ds:
        for name, value in batch.items():
            assert value.shape == [4] + expected[name].shape, name
    queries = pipeline.query_dataset(examples, spec, 3).element_spec
    assert set(queries) == set(features.QUERY_FEATURES)
    candidates = pipeline.candidate_dataset(table, 3).element_spec
    assert set(candidates) == set(features.CANDIDATE_FEATURES)
    for name, got in {**queries, **candidates}.items():
        assert (got.dtype, got.shape[1:]) == (expected[name].dtype, expected[name].shape), name


def test_preprocessing_parity_eager_unbatched_batched(examples, table, spec):
    prep = pipeline.RetrievalPreprocessor(examples, table, spec, query_text_rate=0.6, seed=3)
    eager = [_numpy(prep(i)) for i in range(len(examples))]
    unbatched = [_numpy(x) for x in tf.data.Dataset.range(len(examples)).map(prep)]
    batched = _rows(tf.data.Dataset.range(len(examples)).batch(4).map(prep))
    _assert_rows_equal(eager, unbatched)
    _assert_rows_equal(eager, batched)
    assert any(row[features.QUERY_TOKEN_IDS].any() for row in eager)  # queries were drawn


def test_features_follow_examples_and_table(examples, table, spec):
    rows = _rows(pipeline.retrieval_dataset(examples, table, spec, 4, shuffle=False))
    assert [r[features.USER_ID].decode() for r in rows] == examples.user_id.tolist()
    assert [r[features.ITEM_ID].decode() for r in rows] == examples.item_id.tolist()
    # Example 8: u1 buys d on day 8 (a Friday) after c, b, a; d has no category and no price.
    d = rows[8]
    assert d[features.HISTORY_ITEM_IDS].tolist() == [b"c", b"b", b"a"]
    assert d[features.HISTORY_EVENT_TYPES].tolist() == [b"purchase", b"cart", b"purchase"]
    assert (d[features.DAY_OF_WEEK], d[features.HOUR_OF_DAY]) == (4, 0)
    assert d[features.ITEM_CATEGORY] == b"" and d[features.ITEM_PRICE] == 0.0
    np.testing.assert_array_equal(d[features.ITEM_TOKEN_IDS], table[features.ITEM_TOKEN_IDS][3])
    assert not d[features.QUERY_TOKEN_IDS].any()  # query_text_rate 0: no search text


def test_padding_and_out_of_vocabulary_ids_pass_through(table, spec):
    # u9 and item e are outside the spec's vocabularies: strings reach the model unchanged.
    log = interactions([("u9", "e", 10, "view"), ("u9", "a", 20, "purchase")])
    ex = examples_lib.build_examples(log, 0, END, 3)
    rows = _rows(pipeline.retrieval_dataset(ex, table, spec, 2, shuffle=False))
    assert rows[0][features.HISTORY_ITEM_IDS].tolist() == [b"", b"", b""]
    assert rows[1][features.USER_ID] == b"u9"
    assert rows[1][features.HISTORY_ITEM_IDS].tolist() == [b"e", b"", b""]
    assert rows[1][features.HISTORY_EVENT_TYPES].tolist() == [b"view", b"", b""]
    assert rows[0][features.ITEM_TOKEN_IDS][0] == 1  # "zebra" -> [UNK]


def test_query_text_is_tokenized_and_zero_padded(examples, table, spec):
    prep = pipeline.RetrievalPreprocessor(examples, table, spec, query_text_rate=1.0, seed=1)
    batch = prep(np.arange(len(examples)))
    text = prep.query_text(np.arange(len(examples)))
    tokens = batch[features.QUERY_TOKEN_IDS].numpy()
    assert tokens.dtype == np.int32 and tokens.shape == (len(examples), 6)
    np.testing.assert_array_equal(tokens, spec.tokenizer(6)(text).numpy())
    nonzero = tokens > 0
    assert nonzero[:, 0].all()  # every example got a query
    assert (nonzero[:, :-1] >= nonzero[:, 1:]).all()  # padding is trailing


def test_query_text_is_a_random_subset_of_title_words(table, spec):
    # 400 examples over the 5 catalog items; a quarter get a search query.
    log = interactions([("u1", "abcde"[i % 5], i, "view") for i in range(400)])
    ex = examples_lib.build_examples(log, 0, END, 3)
    prep = pipeline.RetrievalPreprocessor(ex, table, spec, query_text_rate=0.25, seed=0)
    text = [t.decode() for t in prep.query_text(np.arange(400)).numpy()]
    assert 0.18 < np.mean([t != "" for t in text]) < 0.32
    full, partial = 0, 0
    for query, item in zip(text, ex.item_id, strict=True):
        if not query:
            continue
        title = table.titles[table.index_of([item])[0]].split()
        words = query.split()
        positions = [title.index(w) for w in words]  # every word comes from the title...
        assert positions == sorted(positions)  # ...in title order
        full += len(words) == len(title)
        partial += len(words) < len(title)
    assert full > 0 and partial > 0
    no_text = pipeline.RetrievalPreprocessor(ex, table, spec)
    assert not no_text(np.arange(400))[features.QUERY_TOKEN_IDS].numpy().any()
    assert set(no_text.query_text([0, 1]).numpy().tolist()) == {b""}


def test_shuffle_is_deterministic_by_seed(examples, table, spec):
    def order(seed):
        ds = pipeline.retrieval_dataset(examples, table, spec, 3, seed=seed, query_text_rate=0.5)
        return _rows(ds)

    first, again, other = order(7), order(7), order(8)
    _assert_rows_equal(first, again)
    ids = [[r[features.ITEM_ID] + r[features.USER_ID] for r in rows] for rows in (first, other)]
    assert ids[0] != ids[1]
    assert sorted(ids[0]) == sorted(ids[1])  # same examples, another order


def test_repeat_reshuffles_each_epoch(examples, table, spec):
    ds = pipeline.retrieval_dataset(examples, table, spec, len(examples), repeat=True)
    epochs = [
        b[features.ITEM_ID].numpy().tolist() + b[features.USER_ID].numpy().tolist()
        for b in ds.take(3)
    ]
    assert sorted(epochs[0]) == sorted(epochs[1]) and len(set(map(tuple, epochs))) > 1


def test_query_dataset_for_eval_queries(spec):
    queries = examples_lib.build_eval_queries(shop(), 8 * DAY, END, 3, ("purchase",))
    rows = _rows(pipeline.query_dataset(queries, spec, 1))
    assert [r[features.USER_ID] for r in rows] == [b"u1", b"u2"]
    assert rows[1][features.HISTORY_ITEM_IDS].tolist() == [b"b", b"b", b""]
    assert all(
        r[features.QUERY_TOKEN_IDS].shape == (6,) and not r[features.QUERY_TOKEN_IDS].any()
        for r in rows
    )


def test_candidate_dataset_in_catalog_order(table):
    rows = _rows(pipeline.candidate_dataset(table, 2))
    assert [r[features.ITEM_ID] for r in rows] == [b"a", b"b", b"c", b"d", b"e"]
    np.testing.assert_allclose([r[features.ITEM_PRICE] for r in rows], table[features.ITEM_PRICE])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(batch_size=0),
            errors.ConfigError,
            r"`batch_size` must be a positive int, received 0",
        ),
        (dict(query_text_rate=1.5), errors.ConfigError, r"`query_text_rate` must lie in \[0, 1\]"),
    ],
)
def test_bad_arguments(examples, table, spec, kwargs, error, message):
    args = dict(batch_size=2)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        pipeline.retrieval_dataset(examples, table, spec, **args)


def test_target_missing_from_table_raises(examples, spec):
    items = catalog().iloc[:4]  # drops e, a target of u1 on day 8
    small = vocab.build_item_table(items, spec)
    with pytest.raises(
        errors.DataError, match=r"`examples.item_id` must be in the item table, received 'e'"
    ):
        pipeline.retrieval_dataset(examples, small, spec, 2)


def test_history_width_must_match_spec(table, spec):
    wide = examples_lib.build_examples(shop(), 0, END, 5)
    with pytest.raises(errors.DataError, match=r"must have shape \[n, 3\] .*received \[11, 5\]"):
        pipeline.query_dataset(wide, spec, 2)
