"""Fail fast, with a clear message, when TensorFlow or keras-nlp would run on Keras 3."""

import os
import sys


class KerasVersionError(ImportError):
    """Raised when the process would mix Keras generations."""


def check_keras_2() -> None:
    """Checks that `tf.keras` and keras-nlp resolve to Keras 2 (tf-keras).

    Mixing generations fails far from the cause (TFRS tasks and TF-MOT wrappers reject Keras 3
    layers with obscure errors), so we check once, at import.
    """
    flag = os.environ.get("TF_USE_LEGACY_KERAS")
    if flag not in ("1", "true", "True"):
        raise KerasVersionError(
            "tfrec needs Keras 2: `TF_USE_LEGACY_KERAS` must be `1` before TensorFlow is "
            f"imported, received {flag!r}. Unset it or set it to 1."
        )
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        keras_name = getattr(getattr(tf, "keras", None), "__name__", "")
        if not keras_name.startswith("tf_keras"):
            raise KerasVersionError(
                "tfrec needs Keras 2 (tf-keras) but TensorFlow was imported before tfrec without "
                f"`TF_USE_LEGACY_KERAS=1`: `tf.keras` is `{keras_name}`. Import tfrec first, or "
                "set TF_USE_LEGACY_KERAS=1 in the environment."
            )
    if "keras_nlp" in sys.modules:
        from keras_nlp.src.backend import config as nlp_config

        if nlp_config.keras_3():
            raise KerasVersionError(
                "tfrec needs keras-nlp on Keras 2 (keras-nlp <= 0.12.1 with tf-keras), "
                "but keras-nlp is running on Keras 3."
            )
