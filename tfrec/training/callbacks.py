"""Keras callbacks of the training loop: best epoch and early stopping, checkpoints, learning rate."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Optional

import tensorflow as tf

from tfrec.training import state as state_lib


@dataclasses.dataclass(frozen=True)
class Validation:
    """How the best epoch is chosen.

    Args:
        name: str. The score's name in logs and messages, e.g. `val_recall@50`.
        evaluate: the model -> (score, metrics). Higher scores are better; `metrics` (name ->
            float) go to the epoch logs and so to TensorBoard's validation run.
        patience: int. Epochs without a better score before training stops (0: never).
        describe: optional metrics -> str, a short text printed after the score each epoch.
    """

    name: str
    evaluate: Callable[[tf.keras.Model], tuple[float, dict[str, float]]]
    patience: int
    describe: Optional[Callable[[dict[str, float]], str]] = None


class BestEpoch(tf.keras.callbacks.Callback):
    """Scores the model on validation after each epoch, keeps the best weights, stops early."""

    def __init__(
        self, validation: Validation, state: state_lib.TrainingState, label: str = "epoch"
    ) -> None:
        super().__init__()
        self.validation = validation
        self.state = state
        self.label = label

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        value, metrics = self.validation.evaluate(self.model)
        if logs is not None:
            logs.update(metrics)  # TensorBoard: the validation run
        done = epoch + 1
        self.state.record(done, value)
        detail = self.validation.describe(metrics) if self.validation.describe else ""
        print(
            f"{self.label} {done}: {self.validation.name}={value:.4f} (best "
            f"{self.state.best_value:.4f} at epoch {self.state.best_epoch})"
            + (f"; {detail}" if detail else ""),
            flush=True,
        )
        patience = self.validation.patience
        if self.state.out_of_patience(patience):
            print(f"{self.label}: early stopping, no improvement for {patience} epochs", flush=True)
            self.model.stop_training = True


class Checkpointing(tf.keras.callbacks.Callback):
    """Saves the latest state at each epoch end, after `BestEpoch` updated it."""

    def __init__(self, state: state_lib.TrainingState) -> None:
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self.state.save_latest(epoch + 1)


class LearningRateLogger(tf.keras.callbacks.Callback):
    """Adds the learning rate to the epoch logs, so TensorBoard plots it."""

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        if logs is not None:
            lr = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(tf.keras.backend.get_value(lr))
