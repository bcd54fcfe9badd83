"""One config's data, ready for training and evaluation: split, spec, item table, examples."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec import features
from tfrec.data import examples as examples_lib
from tfrec.data import loaders, schema, vocab
from tfrec.data import split as split_lib


@dataclasses.dataclass
class PreparedData:
    """Everything the trainer and the evaluator read, built deterministically from a config.

    Args:
        dataset: schema.Dataset. The cleaned dataset.
        split: split_lib.Split. Temporal train / validation / test.
        spec: features.FeatureSpec. Vocabularies learned from the training split.
        table: vocab.ItemTable. Candidate features of the whole catalog, in catalog order.
        item_counts: np.ndarray [len(spec.items)]. Training counts (log-Q correction).
        train: examples_lib.RetrievalExamples. One example per training target event.
        validation: examples_lib.EvalQueries. Validation queries (early stopping).
        test: examples_lib.EvalQueries. Test queries (reported metrics).
    """

    dataset: schema.Dataset
    split: split_lib.Split
    spec: features.FeatureSpec
    table: vocab.ItemTable
    item_counts: np.ndarray
    train: examples_lib.RetrievalExamples
    validation: examples_lib.EvalQueries
    test: examples_lib.EvalQueries

    def catalog_index(self, item_ids) -> np.ndarray:
        return self.table.index_of(np.asarray(item_ids, dtype=object))

    def train_item_mask(self) -> np.ndarray:
        """[num_items] bool: catalog items seen in the training split."""
        return np.isin(self.table.item_ids, np.asarray(self.spec.items, dtype=object))

    def first_seen(self) -> np.ndarray:
        """[num_items] float64: each catalog item's first event time (unix seconds; NaN: none)."""
        first = self.dataset.interactions.groupby("item_id")["timestamp"].min()
        return pd.Series(self.table.item_ids).map(first).to_numpy(np.float64)

    def available_at(self, boundary: int) -> np.ndarray:
        """[num_items] bool: the catalog as the shop knew it at `boundary` (unix seconds).

        An item is known once it has an event before the boundary; a catalog item with no
        event at all is known from the start (it was listed, nobody bought it). Items first
        seen later did not exist for the shop yet, so nothing could recommend them.
        """
        first = self.first_seen()
        return np.isnan(first) | (first < boundary)


def prepare(
    config: config_lib.Config,
    dataset: Optional[schema.Dataset] = None,
    spec: Optional[features.FeatureSpec] = None,
) -> PreparedData:
    """Splits and featurizes the data named by `config.data`.

    Args:
        config: Config. `data` names the source, the split and the feature sizes.
        dataset: schema.Dataset or None. The cleaned data; None reads and cleans the source.
            A model artifact passes the copy it stored at training time.
        spec: FeatureSpec or None. The vocabularies; None learns them from the training
            split. A model artifact passes its own, so ids map to the rows it trained.
    """
    data = config.data
    ds = dataset if dataset is not None else loaders.load(data)
    split = split_lib.temporal_split(ds.interactions, data.split)
    if spec is None:
        spec = vocab.build_feature_spec(split.train, ds.items, data, config.model.text_encoder)
    table = vocab.build_item_table(ds.items, spec)
    inter = ds.interactions
    far_future = np.iinfo(np.int64).max
    train = examples_lib.build_examples(
        inter, np.iinfo(np.int64).min, split.validation_start, data.max_history, data.target_events
    )
    validation = examples_lib.build_eval_queries(
        inter, split.validation_start, split.test_start, data.max_history, data.target_events
    )
    test = examples_lib.build_eval_queries(
        inter, split.test_start, far_future, data.max_history, data.target_events
    )
    return PreparedData(
        dataset=ds,
        split=split,
        spec=spec,
        table=table,
        item_counts=vocab.item_counts(split.train, spec),
        train=train,
        validation=validation,
        test=test,
    )
