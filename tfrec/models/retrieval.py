"""Two-tower retrieval model: in-batch softmax with temperature, log-Q correction, hit removal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrec import features, precision


def sampling_probabilities(item_counts: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per-item probability of appearing as an in-batch negative, from training counts.

    In-batch negatives are drawn in proportion to popularity; log-Q correction subtracts
    log(probability) from each score so popular items are not over-penalised. Counts below 1
    (items in the vocabulary but never in the training split) are floored at 1 to keep log()
    finite.

    Returns:
        float32 array `[1 + num_items]`: index 0 is the OOV bucket and gets the minimum
        probability, index i + 1 is `item_counts[i]`'s item.
    """
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    probs = counts / counts.sum()
    return np.concatenate([[probs.min()], probs]).astype(np.float32)


class RetrievalModel(tfrs.Model):
    """Trains a query tower and a candidate tower so that a request scores its next item highest.

    Each batch holds (request, item) pairs; every other item of the batch is a negative
    (in-batch softmax). Scores are dot products divided by `temperature`; log-Q correction
    removes the popularity bias of in-batch negatives; accidental hits (the same item as the
    positive, appearing elsewhere in the batch) are not counted as negatives. No retrieval
    metric runs during training: top-k over the full catalog is evaluated elsewhere.

    Args:
        query_model: Model. Dict of `features.QUERY_FEATURES` -> `[batch, dim]`.
        candidate_model: Model. Dict of `features.CANDIDATE_FEATURES` -> `[batch, dim]`.
        item_ids: sequence of str or None. Item vocabulary (`FeatureSpec.items`); required for
            log-Q correction. Defaults to None.
        item_counts: sequence of number or None. Training interactions per item, aligned with
            `item_ids`; required for log-Q correction. Defaults to None.
        temperature: float or None. Divides the scores (None: 1). Defaults to None.
        logq_correction: bool. Subtract log(sampling probability) from scores. Defaults to True.
        remove_accidental_hits: bool. Mask negatives equal to the positive. Defaults to True.
        num_hard_negatives: int or None. Keep only the top-scoring negatives per query.
            Defaults to None.

    Call (compute_loss) args:
        features: dict holding every `features.QUERY_FEATURES` and `features.CANDIDATE_FEATURES`
            input, batched `[batch, ...]`; row i's item is row i's positive.

    Example:
        >>> model = RetrievalModel(query_tower, candidate_tower, spec.items, counts,
        ...                        temperature=0.05)
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        >>> model.fit(train_ds)
    """

    def __init__(
        self,
        query_model: tf.keras.Model,
        candidate_model: tf.keras.Model,
        item_ids: Sequence[str] | None = None,
        item_counts: Sequence[float] | np.ndarray | None = None,
        temperature: float | None = None,
        logq_correction: bool = True,
        remove_accidental_hits: bool = True,
        num_hard_negatives: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if temperature is not None and temperature <= 0:
            raise ValueError(f"`temperature` must be > 0 or None, received {temperature!r}")
        if num_hard_negatives is not None and num_hard_negatives < 1:
            raise ValueError(
                f"`num_hard_negatives` must be >= 1 or None, received {num_hard_negatives!r}"
            )
        if logq_correction:
            if item_ids is None or item_counts is None:
                raise ValueError("`logq_correction` needs `item_ids` and `item_counts`")
            if len(item_ids) != len(item_counts):
                raise ValueError(
                    f"`item_counts` must align with `item_ids`: expected {len(item_ids)} "
                    f"counts, received {len(item_counts)}"
                )
        self.query_model = query_model
        self.candidate_model = candidate_model
        self.temperature = temperature
        self.logq_correction = logq_correction
        self.remove_accidental_hits = remove_accidental_hits
        self.num_hard_negatives = num_hard_negatives
        if logq_correction and item_ids is not None and item_counts is not None:  # checked above
            self._item_lookup = tf.keras.layers.StringLookup(
                vocabulary=list(item_ids), num_oov_indices=1, name="logq_item_lookup"
            )
            self._item_probabilities = tf.constant(sampling_probabilities(item_counts))
        # The task takes no dtype and would autocast scores to float16 under a mixed policy.
        with precision.float32_scope():
            self.task = tfrs.tasks.Retrieval(
                metrics=None,
                temperature=temperature,
                remove_accidental_hits=remove_accidental_hits,
                num_hard_negatives=num_hard_negatives,
            )

    def candidate_sampling_probability(self, item_ids: tf.Tensor) -> tf.Tensor:
        """Sampling probability of each item id `[batch]` (OOV ids: the catalog minimum)."""
        return tf.gather(self._item_probabilities, self._item_lookup(item_ids))

    def compute_loss(self, inputs: dict, training: bool = False) -> tf.Tensor:
        query = {name: inputs[name] for name in features.QUERY_FEATURES}
        candidate = {name: inputs[name] for name in features.CANDIDATE_FEATURES}
        query_embeddings = tf.cast(self.query_model(query, training=training), tf.float32)
        candidate_embeddings = tf.cast(
            self.candidate_model(candidate, training=training), tf.float32
        )
        item_ids = inputs[features.ITEM_ID]
        # The task creates its hit-removal and hard-negative layers inside call(), under the
        # global policy: float16 would overflow their MIN_FLOAT mask, so call it in float32.
        with precision.float32_scope():
            return self.task(
                query_embeddings,
                candidate_embeddings,
                candidate_sampling_probability=(
                    self.candidate_sampling_probability(item_ids) if self.logq_correction else None
                ),
                candidate_ids=item_ids if self.remove_accidental_hits else None,
                compute_metrics=False,
                compute_batch_metrics=False,
            )

    def train_step(self, inputs):
        # tfrs.Model.train_step never calls get_scaled_loss, so under mixed_float16 the
        # LossScaleOptimizer only warns and small float16 gradients underflow to zero; scale the
        # loss and unscale the gradients here, as tf.keras.Model.train_step does.
        scaled = isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            regularization_loss = tf.add_n(
                [tf.cast(tf.reduce_sum(x), tf.float32) for x in self.losses] + [tf.zeros([])]
            )
            total_loss = loss + regularization_loss
            objective = self.optimizer.get_scaled_loss(total_loss) if scaled else total_loss
        gradients = tape.gradient(objective, self.trainable_variables)
        if scaled:
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        metrics = {metric.name: metric.result() for metric in self.metrics}
        metrics.update(loss=loss, regularization_loss=regularization_loss, total_loss=total_loss)
        return metrics
