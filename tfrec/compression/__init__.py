"""Compression of Functional Keras-2 models: pruning, QAT, TFLite int8, int8 SavedModels, sizes.

Modules (import them, e.g. `from tfrec.compression import pruning`):

- `graph`: copy a Functional model layer by layer (wrap layers, inline nested sub-models such as
  keras-nlp's `BertBackbone`, cut `StringLookup`s into inputs).
- `pruning`: `prune`, `callbacks`, `strip`, `measure_sparsity` (TF-MOT magnitude pruning,
  down into BERT's attention and feed-forward kernels).
- `qat`: `quantize_aware` (TF-MOT 8-bit QAT, optionally pruning-preserving).
- `tflite`: `to_tflite` (full int8 or dynamic range), `TFLiteRunner`, `achieved_mode`.
- `int8_savedmodel`: `quantize_tensor`, `dequantize`, `Int8Model`, `save` (int8 weights with
  float32 scales, core TF ops only, for stock TF Serving).
- `sizes`: `size_on_disk`.

Everything runs in float32: TF-MOT wrappers do not support mixed precision, so layers with a
mixed policy are copied as float32 layers.
"""
