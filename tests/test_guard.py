"""The Keras-2 guard: importing tfrec fails fast when Keras 3 would be used."""

import os
import subprocess
import sys


def _run(code: str, **env):
    full = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300
    )


def test_import_sets_legacy_keras():
    r = _run("import tfrec, tensorflow as tf; print(tf.keras.__name__)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("tf_keras")


def test_flag_turned_off_fails():
    r = _run("import tfrec", TF_USE_LEGACY_KERAS="0")
    assert r.returncode != 0
    assert "`TF_USE_LEGACY_KERAS` must be `1`" in r.stderr


def test_tensorflow_imported_first_on_keras_3_fails():
    r = _run("import tensorflow as tf; tf.keras.layers; import tfrec")
    assert r.returncode != 0
    assert "tfrec needs Keras 2" in r.stderr and "Import tfrec first" in r.stderr
