"""Training callbacks: resumable state, early stopping on validation recall, TensorBoard extras."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import api as hp

from tfrec import config as config_lib
from tfrec import errors, inference
from tfrec.data import prepared as prepared_lib
from tfrec.training import workdir as workdir_lib

# The projector is for looking, not for analytics: a sample keeps the TensorBoard tab responsive.
_PROJECTOR_ITEMS = 5000


class TrainingState:
    """Checkpointed training state: weights, optimizer, epoch and early-stopping bookkeeping.

    The latest checkpoint is for resuming after an interruption; the best one (by validation
    recall) is what evaluation and export read.
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

    def restore(self) -> int:
        """Restores the latest checkpoint if there is one; returns the epoch to start from."""
        path = self.latest.latest_checkpoint
        if path:
            self.latest.checkpoint.restore(path).expect_partial()
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


class ValidationRecall(tf.keras.callbacks.Callback):
    """Computes validation Recall@50 each epoch, keeps the best weights, stops early."""

    def __init__(
        self, recall_fn: Callable[[tf.keras.Model], float], state: TrainingState, patience: int
    ) -> None:
        super().__init__()
        self.recall_fn = recall_fn
        self.state = state
        self.patience = patience

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        value = self.recall_fn(self.model)
        if logs is not None:
            logs["val_recall@50"] = value
        done = epoch + 1
        self.state.record(done, value)
        print(
            f"epoch {done}: val_recall@50={value:.4f} (best {self.state.best_value:.4f} "
            f"at epoch {self.state.best_epoch})",
            flush=True,
        )
        if self.state.out_of_patience(self.patience):
            print(f"Early stopping: no improvement for {self.patience} epochs", flush=True)
            self.model.stop_training = True


class Checkpointing(tf.keras.callbacks.Callback):
    """Saves the latest state at each epoch end, after ValidationRecall updated it."""

    def __init__(self, state: TrainingState) -> None:
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


def write_projector(
    tb_dir: Path, model: tf.keras.Model, prepared: prepared_lib.PreparedData
) -> None:
    """Item embeddings with titles as metadata, for TensorBoard's embedding projector."""
    out = tb_dir / "projector"
    out.mkdir(parents=True, exist_ok=True)
    items = inference.item_embeddings(model.candidate_model, prepared.table)[:_PROJECTOR_ITEMS]
    titles = prepared.dataset.items["title"].to_numpy()[: len(items)]
    with open(out / "metadata.tsv", "w", encoding="utf-8") as f:
        for t in titles:
            f.write((str(t).replace("\t", " ").replace("\n", " ") or "(no title)") + "\n")
    variable = tf.Variable(items, name="item_embeddings")
    tf.train.Checkpoint(embedding=variable).save(str(out / "embedding.ckpt"))
    cfg = projector.ProjectorConfig()
    emb = cfg.embeddings.add()
    emb.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
    emb.metadata_path = "metadata.tsv"
    projector.visualize_embeddings(str(out), cfg)


def write_hparams(tb_dir: Path, config: config_lib.Config, summary: dict[str, Any]) -> None:
    """The run's scalar hyperparameters and final metrics, for the HParams dashboard."""
    flat: dict[str, bool | int | float | str] = {}

    def walk(d: dict[str, Any], prefix: str = "") -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, prefix + k + ".")
            elif isinstance(v, (bool, int, float, str)):
                flat[prefix + k] = v

    walk(config_lib.to_dict(config))
    with tf.summary.create_file_writer(str(tb_dir / "hparams")).as_default():
        hp.hparams(flat, trial_id=str(tb_dir.parent.name))
        value = summary.get("best_validation_recall@50")
        if value is not None and np.isfinite(value):
            tf.summary.scalar(
                "best_validation_recall@50", value, step=max(1, summary["epochs_run"])
            )
