"""Picks the tf.distribute strategy: one device, several GPUs, or several workers."""

from __future__ import annotations

import functools
import json
import os

import tensorflow as tf

from tfrec import errors


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Returns the strategy for `train.distribution`.

    `auto` mirrors over GPUs when there are several, and runs on the default device otherwise;
    `multi_worker` reads the cluster from `TF_CONFIG` (see `multi_worker`).

    Raises:
        errors.ConfigError: an unknown name, or `multi_worker` without a usable `TF_CONFIG`.
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            return mirrored(tuple(d.name for d in gpus))
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return mirrored(tuple(d.name for d in (gpus or tf.config.list_logical_devices("CPU"))))
    if name == "multi_worker":
        return multi_worker(os.environ.get("TF_CONFIG", ""))
    raise errors.ConfigError(f"`train.distribution` unknown: {name!r}")


@functools.cache
def mirrored(devices: tuple[str, ...]) -> tf.distribute.MirroredStrategy:
    """The process's one MirroredStrategy over `devices` (names, e.g. `/device:CPU:0`).

    One per process: a second MirroredStrategy over the same CPUs numbers its collective ops
    from the same keys as the first, and its first all-reduce then fails ("Collective instance
    100 expected type 0 and data_type 1 but got type 2 and data_type 3"): seen when `tfrec
    train` trained the id-only baseline after the towers on two logical CPUs.
    """
    return tf.distribute.MirroredStrategy(devices=list(devices))


@functools.cache
def multi_worker(tf_config: str) -> tf.distribute.MultiWorkerMirroredStrategy:
    """The process's one MultiWorkerMirroredStrategy for the cluster of `tf_config`.

    Collective ops are configured once per process, before TensorFlow runs its first op
    ("Collective ops must be configured at program startup" otherwise): so `tfrec train`
    creates the strategy first, and every later call (the baseline's training) gets the same
    one. The constructor blocks until every worker of the cluster has started. All-reduce is
    RING: the implementation that runs on CPU (NCCL needs GPUs).

    Args:
        tf_config: str. The `TF_CONFIG` JSON: `cluster` (e.g. `{"worker": ["host1:2222",
            "host2:2222"]}`) and this process's `task` (`{"type": "worker", "index": 0}`).

    Raises:
        errors.ConfigError: `tf_config` is not JSON with a `cluster` and a `task`.
    """
    try:
        parsed = json.loads(tf_config)
        parsed["cluster"]["worker"], parsed["task"]["type"], parsed["task"]["index"]
    except (ValueError, KeyError, TypeError) as e:
        raise errors.ConfigError(
            "`train.distribution: multi_worker` needs `TF_CONFIG` with a `cluster` holding a "
            f"`worker` list and this process's `task` (`type`, `index`), received {tf_config!r}"
        ) from e
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
