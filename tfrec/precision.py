"""Mixed-precision policy helpers: resolve `auto`, set the global policy, wrap optimizers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

from tfrec import errors

POLICIES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def resolve_policy(name: str) -> str:
    """Maps a `TrainConfig.precision` value to a Keras dtype policy name.

    `auto` gives `mixed_float16` when a GPU is visible and `float32` otherwise: float16 math on
    CPU is emulated and slower than float32. Explicit names are honoured, even on CPU.

    Args:
        name: str. One of `auto`, `float32`, `mixed_float16`, `mixed_bfloat16`.

    Returns:
        The policy name, never `auto`.

    Example:
        >>> resolve_policy("float32")
        'float32'
    """
    if name not in POLICIES:
        raise errors.ConfigError(f"`precision` must be one of {POLICIES}, received {name!r}")
    if name != "auto":
        return name
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def set_policy(name: str) -> str:
    """Resolves `name` and sets it as the global Keras policy; returns the resolved name.

    Models must be built after this call: layers read the global policy when they are created.
    """
    resolved = resolve_policy(name)
    tf.keras.mixed_precision.set_global_policy(resolved)
    return resolved


@contextlib.contextmanager
def float32_scope() -> Iterator[None]:
    """Temporarily sets the global policy to float32, restoring the previous one on exit.

    Needed for objects that take no dtype argument but must compute in float32 under a mixed
    policy, e.g. `tfrs.tasks.Retrieval` (its loss would otherwise be computed in float16).

    Example:
        >>> with float32_scope():
        ...     task = tfrs.tasks.Retrieval()
    """
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(
    optimizer: tf.keras.optimizers.Optimizer, policy: str
) -> tf.keras.optimizers.Optimizer:
    """Wraps `optimizer` in a dynamic `LossScaleOptimizer` when `policy` is `mixed_float16`.

    float16 gradients underflow without loss scaling; bfloat16 has float32's exponent range and
    float32 needs nothing, so those return `optimizer` unchanged. Idempotent.

    Args:
        optimizer: A tf.keras optimizer.
        policy: str. A policy name (`auto` is resolved first).
    """
    resolved = resolve_policy(policy)
    scaled = isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    if resolved == "mixed_float16" and not scaled:
        return tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer
