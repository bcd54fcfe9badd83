"""The repeat prior: a score bonus for items in the user's recent events ("buy again").

E-commerce logs are full of re-orders (UCI Online Retail's wholesalers most of all), and one query
vector cannot point at each of the twenty items a user just bought. So the final retrieval score
is `dot(query, item) + beta * sum(decay ** position)` over the recent events on that item
(position 0 = most recent). `beta` and `decay` are chosen on the validation split, never on test,
and the same formula runs in evaluation (NumPy) and in the serving graph (core TF ops only).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

# Negative weights lower recently seen items: where people rarely come back to an item (ratings,
# reviews, durable goods) the validation window picks one instead of leaving the prior off.
BETAS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, -0.1, -0.5, -2.0)
DECAYS = (0.7, 0.9, 1.0)


@dataclasses.dataclass(frozen=True)
class RepeatPrior:
    """Score bonus for recently seen items.

    Args:
        beta: float. Weight of the bonus; 0 turns the prior off, a negative weight is a penalty.
        decay: float. Per-position decay of an event's weight, most recent first.
    """

    beta: float = 0.0
    decay: float = 1.0

    def weights(self, history_index: np.ndarray, num_items: int) -> np.ndarray:
        """[n, num_items] bonus for history catalog indices [n, H] (-1 = padding or unknown)."""
        n, length = history_index.shape
        bonus = np.zeros((n, num_items), np.float32)
        if self.beta == 0.0:
            return bonus
        per_position = self.beta * self.decay ** np.arange(length, dtype=np.float32)
        rows, cols = np.nonzero(history_index >= 0)
        np.add.at(bonus, (rows, history_index[rows, cols]), per_position[cols])
        return bonus

    def pair_weights(self, history_index: np.ndarray, item_index: np.ndarray) -> np.ndarray:
        """[n] bonus of single (query, item) rows: history [n, H] and item indices [n]."""
        history_index = np.asarray(history_index)
        per_position = self.beta * self.decay ** np.arange(history_index.shape[1])
        match = (history_index == np.asarray(item_index)[:, None]) & (history_index >= 0)
        return (match @ per_position).astype(np.float32)

    def apply(self, base: Callable[[int, int], np.ndarray], history_index: np.ndarray):
        """Wraps a protocol score function: base scores plus the bonus."""

        def score(start: int, end: int) -> np.ndarray:
            scores = base(start, end)
            return scores + self.weights(history_index[start:end], scores.shape[1])

        return score

    def tf_weights(self, history_index):
        """Each recent event's bonus to its own item, for serving graphs: [batch, H] int ->
        [batch, H] float32 (0 for padding, index < 0). Duplicate items add up."""
        import tensorflow as tf

        length = tf.shape(history_index)[1]
        per_position = self.beta * tf.pow(self.decay, tf.cast(tf.range(length), tf.float32))
        valid = history_index >= 0
        return tf.where(valid, tf.broadcast_to(per_position, tf.shape(history_index)), 0.0)

    def tf_bonus(self, history_index, num_items: int):
        """The same bonus in TensorFlow, for serving graphs: [batch, H] int -> [batch, items].

        A scatter (duplicates add up), so memory is [batch, items], never [batch, H, items].
        """
        import tensorflow as tf

        history_index = tf.cast(history_index, tf.int64)
        batch, length = tf.shape(history_index)[0], tf.shape(history_index)[1]
        valid = history_index >= 0
        updates = self.tf_weights(history_index)
        rows = tf.broadcast_to(tf.range(tf.cast(batch, tf.int64))[:, None], [batch, length])
        indices = tf.stack([rows, tf.where(valid, history_index, 0)], axis=-1)
        shape = tf.stack([tf.cast(batch, tf.int64), tf.constant(num_items, tf.int64)])
        return tf.scatter_nd(indices, updates, shape)

    def save(self, path) -> None:
        from tfrec import config as config_lib

        config_lib.write_text_atomic(path, json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def load(cls, path) -> RepeatPrior:
        path = Path(path)
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(beta=float(data["beta"]), decay=float(data["decay"]))


def tune(
    evaluate: Callable[[RepeatPrior], float],
    betas: Sequence[float] = BETAS,
    decays: Sequence[float] = DECAYS,
) -> tuple[RepeatPrior, list]:
    """Grid search on validation: returns the best prior and every (beta, decay, value) tried.

    Ties go to the earlier grid value: no prior first (prefer the model's own scores when the
    prior does not help), then positive weights before negative ones.
    """
    tried = []
    best, best_value = RepeatPrior(), evaluate(RepeatPrior())
    tried.append((0.0, 1.0, best_value))
    for beta, decay in itertools.product(betas, decays):
        if beta == 0.0:
            continue
        prior = RepeatPrior(beta, decay)
        value = evaluate(prior)
        tried.append((beta, decay, value))
        if value > best_value:
            best, best_value = prior, value
    return best, tried
