"""int8 weights: golden row and channel scales, per-channel axes of each layer kind, round trips."""

import numpy as np
import pytest

from tests.compression import standins
from tfrec.compression import weight_quantization


def test_quantize_tensor_golden():
    # Row scales: max|row| / 127 = 2/127 and 0.5/127; an all-zero row gets scale 1.
    x = np.array([[1.0, -2.0], [0.5, 0.25], [0.0, 0.0]], dtype=np.float32)
    values, scales = weight_quantization.quantize_tensor(x, axis=0)
    assert values.dtype == np.int8 and values.tolist() == [[64, -127], [127, 64], [0, 0]]
    np.testing.assert_allclose(scales, [2 / 127, 0.5 / 127, 1.0], rtol=1e-6)
    back = weight_quantization.dequantize(values, scales, axis=0).numpy()
    np.testing.assert_allclose(back, x, atol=np.max(scales[:2]) / 2 + 1e-7)
    _, column_scales = weight_quantization.quantize_tensor(x, axis=-1)
    np.testing.assert_allclose(column_scales, [1 / 127, 2 / 127], rtol=1e-6)
    with pytest.raises(ValueError, match=r"`axis` must index dimensions.*\(3, 2\).*received 2"):
        weight_quantization.quantize_tensor(x, axis=2)


def test_per_channel_over_several_axes():
    # An attention projection [in=2, heads=2, dim=2]: one scale per (head, dim) output channel.
    x = np.arange(1, 9, dtype=np.float32).reshape(2, 2, 2) * np.array([1, -1], np.float32)
    values, scales = weight_quantization.quantize_tensor(x, axis=(1, 2))
    # Channel (h, d) holds x[0, h, d] and x[1, h, d]; the second has the larger magnitude.
    np.testing.assert_allclose(scales, np.abs(x[1]) / 127, rtol=1e-6)
    assert np.abs(values[1]).tolist() == [[127, 127], [127, 127]]
    back = weight_quantization.dequantize(values, scales, axis=(1, 2)).numpy()
    np.testing.assert_allclose(back, x, atol=np.max(scales) / 2 + 1e-6)


def test_channel_axes_follow_the_layer():
    model = standins.tower()
    attention = model.get_layer("self_attention")
    query, output = attention._query_dense, attention._output_dense
    assert weight_quantization.channel_axes(query, "kernel", 3) == (1, 2)  # [in, heads, dim]
    assert weight_quantization.channel_axes(output, "kernel", 3) == (2,)  # [heads, dim, out]
    assert weight_quantization.channel_axes(model.get_layer("hidden"), "kernel", 2) == (1,)
    assert weight_quantization.channel_axes(model.get_layer("item_embedding"), "embeddings", 2) == (
        0,
    )
