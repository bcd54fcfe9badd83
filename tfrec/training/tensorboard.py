"""TensorBoard extras of a run: the item embedding projector and the HParams dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import api as hp

from tfrec import config as config_lib
from tfrec import inference
from tfrec.data import prepared as prepared_lib

# The projector is for looking, not for analytics: a sample keeps the TensorBoard tab responsive.
_PROJECTOR_ITEMS = 5000


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
