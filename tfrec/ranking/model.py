"""The multi-task ranking model: the DCN-v2 network plus one weighted TFRS ranking task per head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrec.ranking import examples


def binary_task(head: str) -> tfrs.tasks.Ranking:
    """A click-style task for `head`: BCE on logits, with AUC and log loss as metrics.

    Build it while the global policy is float32 (see `tfrec.precision.float32_scope`): the task
    takes no dtype and would otherwise compute its loss in float16.
    """
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[
            tf.keras.metrics.AUC(from_logits=True, name=f"{head}_auc"),
            tf.keras.metrics.BinaryCrossentropy(from_logits=True, name=f"{head}_log_loss"),
        ],
        name=f"{head}_task",
    )


def regression_task(head: str) -> tfrs.tasks.Ranking:
    """An explicit-feedback task for `head` (e.g. a rating): MSE loss, RMSE metric."""
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name=f"{head}_rmse")],
        name=f"{head}_task",
    )


def make_task(head: str) -> tfrs.tasks.Ranking:
    """`regression_task` for heads in examples.REGRESSION_HEADS, `binary_task` otherwise."""
    return regression_task(head) if head in examples.REGRESSION_HEADS else binary_task(head)


class RankingModel(tfrs.Model):
    """Re-scores retrieved candidates for several engagement signals at once.

    The second stage of the recommender: `network` maps a batch of (request, candidate) rows to
    one logit per head (view, cart, purchase, or a rating prediction) and each head has its own
    `tfrs.tasks.Ranking`. The training loss is the weighted sum of the head losses, in float32;
    a head with weight 0 still updates its metrics but adds nothing to the loss.

    Args:
        network: tf.keras.Model. Functional; features dict -> dict head -> [batch, 1]. Kept as
            the public attribute `network` for export and compression.
        tasks: dict head -> tfrs.tasks.Ranking. One per network output.
        loss_weights: dict head -> float or None. Missing heads weigh 1. Defaults to None.
        **kwargs: Passed to `tfrs.Model`.

    Call args (compute_loss):
        inputs: tuple (features, labels): features as the network takes them, labels a dict
            head -> [batch] or [batch, 1].

    Example:
        >>> model = RankingModel(net, {"view": binary_task("view")}, {"view": 1.0})
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        >>> model.fit(dataset_of_features_and_labels)
    """

    def __init__(
        self,
        network: tf.keras.Model,
        tasks: Mapping[str, tfrs.tasks.Ranking],
        loss_weights: Optional[Mapping[str, float]] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        outputs = sorted(network.output) if isinstance(network.output, dict) else None
        if outputs is None or sorted(tasks) != outputs:
            raise ValueError(
                f"`tasks` must have one task per key of the network's output dict {outputs}, "
                f"received {sorted(tasks)}"
            )
        loss_weights = dict(loss_weights or {})
        unknown = sorted(set(loss_weights) - set(tasks))
        if unknown:
            raise ValueError(
                f"`loss_weights` keys must be heads {sorted(tasks)}, received {unknown[0]!r}"
            )
        for head, weight in loss_weights.items():
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
                raise ValueError(
                    f"`loss_weights[{head!r}]` must be a number >= 0, received {weight!r}"
                )
        self.network = network
        self.heads = tuple(sorted(tasks))
        self.tasks = dict(tasks)
        self.loss_weights = {h: float(loss_weights.get(h, 1.0)) for h in self.heads}

    def call(self, features, training=False):
        return self.network(features, training=training)

    def head_losses(self, inputs, training: bool = False) -> dict:
        """Per-head task losses (float32 scalars) of one batch; also updates the metrics."""
        features, labels = inputs
        missing = [h for h in self.heads if h not in labels]
        if missing:
            raise ValueError(f"`labels` must hold every head {self.heads}, missing {missing}")
        outputs = self.network(features, training=training)
        losses = {}
        for head in self.heads:
            predictions = tf.cast(outputs[head], tf.float32)
            head_labels = tf.reshape(tf.cast(labels[head], tf.float32), tf.shape(predictions))
            losses[head] = self.tasks[head](
                labels=head_labels, predictions=predictions, training=training
            )
        return losses

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        losses = self.head_losses(inputs, training=training)
        total = tf.constant(0.0, tf.float32)
        for head in self.heads:
            # Skipping (rather than multiplying by 0) keeps a NaN in an unused head harmless.
            if self.loss_weights[head] > 0:
                total += self.loss_weights[head] * tf.cast(losses[head], tf.float32)
        return total
