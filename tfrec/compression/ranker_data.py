"""The ranker's examples for `tfrec compress`: a training stream, test examples, AUC on them."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import inference
from tfrec.data import prepared as prepared_lib

if TYPE_CHECKING:  # imported where used: the ranking package is optional
    from tfrec.models import retrieval


def available(workdir: os.PathLike | str) -> bool:
    """True when the ranking package can load a ranker and `workdir` holds a trained one.

    Args:
        workdir: str or path-like. A trained run.

    Returns:
        bool.
    """
    if importlib.util.find_spec("tfrec.ranking.training") is None:
        return False
    from tfrec.ranking import training

    return training.has_ranker(workdir)


def datasets(
    config: config_lib.Config,
    workdir: Path,
    prepared: prepared_lib.PreparedData,
    retrieval_model: retrieval.RetrievalModel,
    heads: Sequence[str],
    item_vectors: Optional[np.ndarray] = None,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """(repeated training batches, test batches of 1024) of labeled ranking examples.

    Training examples come from the ranker's own training window, test ones from the test
    split, drawn as `tfrec train` and `tfrec evaluate` draw them.

    Args:
        config: Config. The run config.
        workdir: Path. The run (its repeat prior).
        prepared: PreparedData. The run's data.
        retrieval_model: RetrievalModel. The trained towers whose scores the ranker reads.
        heads: sequence of str. The ranker's heads.
        item_vectors: np.ndarray or None. The retrieval model's item embeddings in catalog
            order, when the caller has them (`inference.item_embeddings`). Defaults to None:
            computed here.

    Returns:
        (train, test) datasets of (features, labels).
    """
    from tfrec.models import repeat_prior
    from tfrec.ranking import dataset, sampling, training
    from tfrec.training import workdir as workdir_lib

    if item_vectors is None:
        item_vectors = inference.item_embeddings(retrieval_model.candidate_model, prepared.table)
    prior = repeat_prior.RepeatPrior.load(workdir_lib.Workdir(workdir).repeat_prior)
    common: dict[str, Any] = dict(
        retrieval_model=retrieval_model, heads=heads, item_vectors=item_vectors, prior=prior
    )
    seed, split = config.train.seed, prepared.split
    catalog = sampling.ranking_catalog(prepared)
    # The ranker's own training window (by default the start of the validation window, where
    # the retrieval scores it reads are as on live traffic).
    (start, end), _ = training.example_windows(config.ranking, split)
    train_q, train_pairs = sampling.labeled_examples(
        config,
        prepared,
        start=start,
        end=end,
        max_positives=training.MAX_TRAIN_POSITIVES,
        seed=seed,
        **common,
    )
    test_q, test_pairs = sampling.labeled_examples(
        config,
        prepared,
        start=split.test_start,
        end=None,
        max_positives=sampling.MAX_EVAL_POSITIVES,
        seed=seed + 2,
        **common,
    )
    train = dataset.make_dataset(
        train_pairs, train_q, catalog, heads, config.ranking.batch_size, shuffle_seed=seed + 1
    ).repeat()
    test = dataset.make_dataset(test_pairs, test_q, catalog, heads, 1024)
    return train, test


def auc(
    outputs_fn: Callable[[Any], Mapping[str, Any]], test: tf.data.Dataset, heads: Sequence[str]
) -> dict[str, Any]:
    from tfrec.ranking import metrics

    labels, outputs = [], []
    for features, batch_labels in test:
        got = outputs_fn(features)
        labels.append(np.concatenate([np.reshape(batch_labels[h], [-1, 1]) for h in heads], 1))
        outputs.append(np.concatenate([np.reshape(got[h], [-1, 1]) for h in heads], 1))
    per_head = metrics.head_metrics(np.concatenate(labels), np.concatenate(outputs), heads)
    aucs = [m["auc"] for m in per_head.values() if "auc" in m]
    return {"auc": float(np.mean(aucs)) if aucs else None, "per_head": per_head}


def by_keywords(
    fn: Callable[..., Mapping[str, Any]],
) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    """`fn` taking a feature dict as its keyword arguments, as a signature takes features."""
    return lambda features: fn(**features)
