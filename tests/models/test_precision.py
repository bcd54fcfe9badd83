"""Tests for tfrec.precision: policy resolution, float32 scope, optimizer wrapping."""

import pytest
import tensorflow as tf

from tfrec import errors, precision


def test_resolve_policy():
    expected_auto = "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
    assert precision.resolve_policy("auto") == expected_auto
    for name in ("float32", "mixed_float16", "mixed_bfloat16"):
        assert precision.resolve_policy(name) == name
    with pytest.raises(errors.ConfigError, match="`precision` must be one of .* 'float64'"):
        precision.resolve_policy("float64")


def test_set_policy_and_float32_scope():
    previous = tf.keras.mixed_precision.global_policy()
    try:
        assert precision.set_policy("mixed_bfloat16") == "mixed_bfloat16"
        with precision.float32_scope():
            assert tf.keras.mixed_precision.global_policy().name == "float32"
        assert tf.keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def test_wrap_optimizer():
    scaled = precision.wrap_optimizer(tf.keras.optimizers.Adam(), "mixed_float16")
    assert isinstance(scaled, tf.keras.mixed_precision.LossScaleOptimizer)
    assert precision.wrap_optimizer(scaled, "mixed_float16") is scaled
    plain = tf.keras.optimizers.Adam()
    assert precision.wrap_optimizer(plain, "mixed_bfloat16") is plain
    assert precision.wrap_optimizer(plain, "float32") is plain
