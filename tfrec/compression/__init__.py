"""Compression of Functional Keras-2 models: pruning, QAT, TFLite int8, int8 SavedModels, sizes.

Modules (import them, e.g. `from tfrec.compression import pruning`):

Toolkit (any Functional Keras-2 model):

- `graph`: `rebuild` copies a Functional model layer by layer (wrap layers, inline nested
  sub-models such as keras-nlp's `BertBackbone`, cut `StringLookup`s into inputs);
  `positional_as_keywords` lets wrappers take layers called with two tensors.
- `pruning`: `prune`, `callbacks`, `strip`, `measure_sparsity`, `zero_counts` (TF-MOT magnitude
  pruning, down into BERT's and `MultiHeadAttention`'s kernels and DCN `Cross` layers).
- `qat`: `quantize_aware` (TF-MOT 8-bit QAT, optionally pruning-preserving).
- `tflite`: `to_tflite` (full int8 with selected float ops, dynamic range or float),
  `TFLiteRunner`.
- `tflite_ops`: `op_dtypes`, `float_compute_ops`, `achieved_mode` (what a flatbuffer computes
  in).
- `int8_savedmodel`: `quantize_tensor`, `dequantize`, `channel_axes`, `Int8Model`, `save`
  (int8 weights with per-channel float16 scales, packed into two variables, vocabularies
  rebuilt at load; core TF ops only, for stock TF Serving).
- `distill`: `DistilledTowers`, `DistilledRanker` (fine-tuning compressed copies to score like
  the float32 model they were made from).
- `compact_tables`: `compact_table` (vocabulary tables rebuilt at load from compact data).
- `sizes`: `size_on_disk`, `savedmodel_parts` (where a SavedModel's bytes go).

Parts of `tfrec compress` (wired together by `tfrec.pipelines.compress`):

- `artifacts`: served artifacts of a variant (SavedModel or TFLite, with the item index) and
  runners that load them back.
- `variants`: pruned, QAT and pruned-QAT retrieval towers, fine-tuned by distillation.
- `ranker`: the same variants of the DCN ranker (TFLite too, integer ids in), measured by AUC.
- `report`: evaluation protocol, latency, ratios to float32 and targets; `report_markdown`
  renders `report.md`.

Everything runs in float32: TF-MOT wrappers do not support mixed precision, so layers with a
mixed policy are copied as float32 layers.
"""
