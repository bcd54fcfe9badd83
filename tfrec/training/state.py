"""A run's checkpointed training state: weights, optimizer, epoch and early-stopping bookkeeping."""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from tfrec import errors
from tfrec.training import workdir as workdir_lib


class TrainingState:
    """Checkpointed training state: weights, optimizer, epoch and early-stopping bookkeeping.

    The latest checkpoint is for resuming after an interruption; the best one (by the
    validation score of `fit.Validation`) is what evaluation and export read.
    """

    def __init__(
        self,
        workdir: workdir_lib.Workdir,
        model: tf.keras.Model,
        optimizer: Optional[tf.keras.optimizers.Optimizer],
    ) -> None:
        self.workdir = workdir
        self.model = model
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
        self.best_epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False)
        parts = dict(
            model=model,
            epoch=self.epoch,
            best=self.best,
            best_epoch=self.best_epoch_var,
            wait=self.wait,
        )
        if optimizer is not None:
            parts["optimizer"] = optimizer
        self.latest = tf.train.CheckpointManager(
            tf.train.Checkpoint(**parts), str(workdir.checkpoints), max_to_keep=2
        )
        self.best_manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model), str(workdir.best), max_to_keep=1
        )

    best_value = property(lambda self: float(self.best.numpy()))
    best_epoch = property(lambda self: int(self.best_epoch_var.numpy()))

    def restore(self, verbose: bool = True) -> int:
        """Restores the latest checkpoint if there is one; returns the epoch to start from."""
        path = self.latest.latest_checkpoint
        if path:
            self.latest.checkpoint.restore(path).expect_partial()
            if verbose:
                print(f"Resuming from {path} (epoch {int(self.epoch.numpy())})")
        return int(self.epoch.numpy())

    def save_latest(self, epoch: int) -> None:
        self.epoch.assign(epoch)
        self.latest.save(checkpoint_number=epoch)

    def save_best(self, epoch: int, value: float) -> None:
        self.best.assign(value)
        self.best_epoch_var.assign(epoch)
        self.best_manager.save(checkpoint_number=epoch)

    def record(self, epoch: int, value: float) -> None:
        """Saves the weights when `value` beats the best so far; otherwise counts a wait."""
        if value > self.best_value:
            self.save_best(epoch, value)
            self.wait.assign(0)
        else:
            self.wait.assign_add(1)

    def out_of_patience(self, patience: int) -> bool:
        """True once `patience` epochs in a row brought no improvement (0: never)."""
        return bool(patience) and int(self.wait.numpy()) >= patience

    def restore_best(self, required: bool = False) -> None:
        path = self.best_manager.latest_checkpoint or self.latest.latest_checkpoint
        if path is None:
            if required:
                raise errors.WorkdirError(
                    f"workdir `{self.workdir.root}` holds no trained model: run `tfrec train` first"
                )
            return
        tf.train.Checkpoint(model=self.model).restore(path).expect_partial()
