"""Tests for the streaming passes over shards: split boundaries, counts and vocabularies."""

import pytest

import tfrec  # noqa: F401
from tests.data import shard_helpers
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import convert, csv_loader, shard_counts, split, vocab


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(shard folder, in-memory dataset) of the same log, in 4 shards."""
    log = shard_helpers.write_log(tmp_path_factory.mktemp("log"), num_events=4000, seed=3)
    out = tmp_path_factory.mktemp("shards") / "s"
    convert.convert(shard_helpers.csv_data(log), out, shard_rows=1000, chunk_rows=1500)
    return out, csv_loader.load(shard_helpers.CSV, base_dir=log)


def test_boundaries_equal_the_temporal_split(converted):
    folder, memory = converted
    config = config_lib.SplitConfig(validation_start=0.7, test_start="2024-06-01")
    parts = split.temporal_split(memory.interactions, config)
    cut = shard_counts.boundaries(folder, config)
    assert (cut.validation_start, cut.test_start) == (parts.validation_start, parts.test_start)
    assert cut.min_timestamp == memory.interactions["timestamp"].min()
    assert cut.max_timestamp == memory.interactions["timestamp"].max()
    validation = shard_counts.count(folder, cut.validation_start, cut.test_start)
    assert validation.events == len(parts.validation)
    assert validation.users == parts.validation["user_id"].value_counts().to_dict()


def test_vocabularies_equal_those_of_the_in_memory_log(converted):
    folder, memory = converted
    data = config_lib.DataConfig(vocab_size=200)
    parts = split.temporal_split(memory.interactions, data.split)
    spec = vocab.build_feature_spec(parts.train, memory.items, data)
    train = shard_counts.train_counts(folder, data.split)
    assert train.events == len(parts.train)
    # Ties are frequent in a 4,000-event log: the order among them must match too.
    assert len(set(train.items.values())) < len(train.items)
    assert shard_counts.vocabulary(train.users) == spec.users
    assert shard_counts.vocabulary(train.items) == spec.items
    counts = [train.items[item] for item in spec.items]
    assert counts == vocab.item_counts(parts.train, spec).tolist()


def test_whole_log_counts(converted):
    folder, memory = converted
    counts = shard_counts.count(folder)
    assert counts.events == len(memory.interactions)
    assert counts.items == memory.interactions["item_id"].value_counts().to_dict()


def test_cut_off_outside_the_time_range_is_refused(converted):
    folder, _ = converted
    config = config_lib.SplitConfig(validation_start="2030-01-01", test_start="2031-01-01")
    with pytest.raises(errors.ConfigError, match="`split.validation_start` must fall inside"):
        shard_counts.boundaries(folder, config)
