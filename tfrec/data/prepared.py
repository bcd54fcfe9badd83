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

    The examples (`train`, `validation`, `test`) are built on first use: loading a trained
    model for export or serving needs only the vocabularies and the item table.

    Args:
        dataset: schema.Dataset. The cleaned dataset.
        split: split_lib.Split. Temporal train / validation / test.
        spec: features.FeatureSpec. Vocabularies learned from the training split only.
        table: vocab.ItemTable. Candidate features of the whole catalog, in catalog order.
        item_counts: np.ndarray [len(spec.items)]. Training counts (log-Q correction).
        data: DataConfig. History length and target events of the examples.
    """

    dataset: schema.Dataset
    split: split_lib.Split
    spec: features.FeatureSpec
    table: vocab.ItemTable
    item_counts: np.ndarray
    data: config_lib.DataConfig
    _examples: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def train(self) -> examples_lib.RetrievalExamples:
        """One example per training target event."""
        if "train" not in self._examples:
            self._examples["train"] = examples_lib.build_examples(
                self.dataset.interactions,
                np.iinfo(np.int64).min,
                self.split.validation_start,
                self.data.max_history,
                self.data.target_events,
            )
        return self._examples["train"]

    @property
    def validation(self) -> examples_lib.EvalQueries:
        """Validation queries (early stopping, tuning)."""
        return self._queries("validation", self.split.validation_start, self.split.test_start)

    @property
    def test(self) -> examples_lib.EvalQueries:
        """Test queries (reported metrics)."""
        return self._queries("test", self.split.test_start, np.iinfo(np.int64).max)

    def _queries(self, name: str, start: int, end: int) -> examples_lib.EvalQueries:
        if name not in self._examples:
            self._examples[name] = examples_lib.build_eval_queries(
                self.dataset.interactions,
                start,
                end,
                self.data.max_history,
                self.data.target_events,
            )
        return self._examples[name]

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
    return PreparedData(
        dataset=ds,
        split=split,
        spec=spec,
        table=table,
        item_counts=vocab.item_counts(split.train, spec),
        data=data,
    )
