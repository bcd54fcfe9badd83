"""tfrec: real-time personalized e-commerce recommendation on TensorFlow (Keras 2)."""

import os as _os

# TFRS and TF-MOT only work with Keras 2 (tf-keras): this must be set before TensorFlow is
# imported anywhere in the process, so it happens at the very top of the package.
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfrec import _guard  # noqa: E402

__version__ = "0.1.0"

_guard.check_keras_2()


def load(path):
    """The ready two-stage `Recommender` of a trained model artifact (or a run holding one).

    Only the artifact is read: its config, vocabularies, catalog, towers, ranker, repeat prior
    and blend. Example: `tfrec.load("runs/demo").recommend("u1", [("i9", "cart")], k=5)`.
    """
    from tfrec import artifact

    return artifact.load(path)
