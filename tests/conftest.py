"""Suite-wide set-up: tfrec is imported before any test module imports TensorFlow."""

# ruff's import sorting puts `tensorflow` before `tfrec` in test modules; importing tfrec here,
# first, sets TF_USE_LEGACY_KERAS=1 before TensorFlow loads, so tf.keras is Keras 2 everywhere.
import tfrec  # noqa: F401
