"""Tests of tfrec.compression. tfrec is imported first: it selects Keras 2 before TensorFlow loads."""

import tfrec  # noqa: F401
