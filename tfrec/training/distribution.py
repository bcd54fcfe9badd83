"""Picks the tf.distribute strategy: one device, several GPUs, or several workers."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from tfrec import errors


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Returns the strategy for `train.distribution`.

    `auto` mirrors over GPUs when there are several, and runs on the default device otherwise;
    `multi_worker` reads the cluster from `TF_CONFIG`.
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        raw = os.environ.get("TF_CONFIG", "")
        try:
            cluster = json.loads(raw)["cluster"]
        except (ValueError, KeyError) as e:
            raise errors.ConfigError(
                "`train.distribution: multi_worker` needs `TF_CONFIG` with a `cluster`, "
                f"received {raw!r}"
            ) from e
        del cluster
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise errors.ConfigError(f"`train.distribution` unknown: {name!r}")
