"""Makes the repository root importable so test modules can `from tests import harness`."""

import tfrec  # noqa: I001, F401  (first: it selects Keras 2 before TensorFlow loads)
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
