"""The one place that turns a RankingConfig into a ranking model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors, precision
from tfrec import features as features_lib
from tfrec.data import schema
from tfrec.ranking import model, network


def resolve_heads(ranking_config: config_lib.RankingConfig, heads: Sequence[str]) -> tuple:
    """The ranker's heads: `ranking.heads` when set, else `heads` (event types in the data)."""
    chosen = tuple(ranking_config.heads) or tuple(heads)
    if not chosen:
        raise errors.ConfigError("`ranking.heads` is empty and the data has no event types")
    unknown = [h for h in chosen if h not in schema.EVENT_TYPES]
    if unknown:
        raise errors.ConfigError(
            f"`ranking.heads` must be event types {schema.EVENT_TYPES}, received {unknown[0]!r}"
        )
    if len(set(chosen)) != len(chosen):
        raise errors.ConfigError(f"`ranking.heads` must not repeat a head, received {chosen}")
    return chosen


def build_ranker(
    ranking_config: config_lib.RankingConfig,
    spec: features_lib.FeatureSpec,
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    heads: Sequence[str],
) -> model.RankingModel:
    """Builds and compiles the multi-task DCN-v2 ranker described by `ranking_config`.

    Args:
        ranking_config: RankingConfig. Heads, loss weights, cross layers, MLP, learning rate.
        spec: FeatureSpec. Vocabularies (users, items, categories, event types), max_history.
        item_ids: list of str [num_items]. Rows of `item_vectors`.
        item_vectors: np.ndarray [num_items, dim]. The retrieval item tower's embeddings.
        heads: list of str. Event types present in the training data; used unless
            `ranking_config.heads` is set.

    Returns:
        A compiled RankingModel (Adam at `ranking_config.learning_rate`); its `network` is the
        Functional model to export. The id embedding width is the network's default (16).
    """
    chosen = resolve_heads(ranking_config, heads)
    unknown = sorted(set(ranking_config.loss_weights) - set(chosen))
    if unknown:
        raise errors.ConfigError(
            f"`ranking.loss_weights` keys must be heads {chosen}, received {unknown[0]!r}"
        )
    for head, weight in ranking_config.loss_weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise errors.ConfigError(
                f"`ranking.loss_weights.{head}` must be a number >= 0, received {weight!r}"
            )
    if ranking_config.projection_dim is not None and ranking_config.projection_dim < 1:
        raise errors.ConfigError(
            f"`ranking.projection_dim` must be a positive int or null, "
            f"received {ranking_config.projection_dim}"
        )
    net = network.build_ranking_network(
        users=spec.users,
        items=spec.items,
        categories=spec.categories,
        event_types=spec.event_types,
        item_ids=item_ids,
        item_vectors=item_vectors,
        max_history=spec.max_history,
        heads=chosen,
        cross_layers=ranking_config.cross_layers,
        projection_dim=ranking_config.projection_dim,
        mlp=tuple(ranking_config.mlp),
    )
    # Tasks take no dtype: built under float32 they compute their losses in float32.
    with precision.float32_scope():
        tasks = {head: model.make_task(head) for head in chosen}
    ranker = model.RankingModel(net, tasks, dict(ranking_config.loss_weights))
    ranker.compile(optimizer=tf.keras.optimizers.Adam(ranking_config.learning_rate))
    return ranker
