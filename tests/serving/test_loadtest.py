"""Load-test percentiles against NumPy's, on known samples."""

import math

import numpy as np
import pytest

from tfrec.serving import loadtest


def test_percentiles_match_numpy_on_known_samples():
    # 1..100: position (n - 1) * q / 100 -> 49.5, 94.05, 98.01 (0-based) -> values + 1.
    assert loadtest.percentiles(range(1, 101)) == pytest.approx([50.5, 95.05, 99.01])
    assert loadtest.percentiles([4.0, 1.0, 3.0, 2.0], [0, 50, 100]) == [1.0, 2.5, 4.0]
    rng = np.random.default_rng(0)
    qs = [0, 1, 50, 95, 99, 99.9, 100]
    for n in (1, 2, 7, 1000):
        samples = rng.exponential(3.0, n)
        np.testing.assert_allclose(loadtest.percentiles(samples, qs), np.percentile(samples, qs))
    assert all(math.isnan(v) for v in loadtest.percentiles([]))
    with pytest.raises(ValueError, match="`qs`"):
        loadtest.percentiles([1.0], [101])
