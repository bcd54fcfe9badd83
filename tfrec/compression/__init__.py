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
- `weight_quantization`: `quantize_tensor`, `dequantize`, `stored_scales`, `channel_axes`,
  `Int8Weight` (symmetric int8 with per-row or per-output-channel scales).
- `packing`: `Packer`, `Unpacked`, `PackedWeight` (many weights in one int8, one float16 and
  one float32 variable, split in the graph without copies).
- `weight_reads`: `held_variables`, `unserved_weights` (which weights a traced call reads).
- `weight_swaps`: `swapped`, `without_name_scope` (tracing a Keras model over packed weights).
- `int8_savedmodel`: `Int8Model`, `save` (int8 weights with per-channel float16 scales,
  vocabularies rebuilt at load; core TF ops only, for stock TF Serving).
- `distill`: `DistilledTowers`, `DistilledRanker` (fine-tuning compressed copies to score like
  the float32 model they were made from).
- `compact_tables`: `compact_table` (vocabulary tables rebuilt at load from compact data).
- `sizes`: `size_on_disk`, `savedmodel_parts` (where a SavedModel's bytes go).

Parts of `tfrec compress` (wired together by `tfrec.pipelines.compress`):

- `artifacts`: served artifacts of a variant (SavedModel or TFLite, with the item index) and
  runners that load them back.
- `variants`: pruned, QAT and pruned-QAT retrieval towers, fine-tuned by distillation.
- `tower_exports`: the towers' variants as SavedModels (float32, pruned, QAT, int8) and TFLite.
- `ranker`: the same variants of the DCN ranker, measured by AUC, from `ranker_data` (its
  examples and AUC), `ranker_variants` (pruned and QAT copies), `ranker_tflite` (flatbuffers,
  the int8 mode chosen by the targets) and `ranker_tflite_graph` (its graph made ready for
  TFLite).
- `report`: evaluation protocol, latency, ratios to float32 and targets; `report_markdown`
  renders `report.md`.

What is made and how it is measured is the config's `compression` section
(`config.CompressionConfig`).

Everything runs in float32: TF-MOT wrappers do not support mixed precision, so layers with a
mixed policy are copied as float32 layers.
"""
