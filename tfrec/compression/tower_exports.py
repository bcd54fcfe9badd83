"""The towers' variants as served artifacts: a SavedModel each, and TFLite query towers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfrec import inference
from tfrec.compression import artifacts, tflite_ops, variants
from tfrec.data import vocab

# TFLite variants of the query tower and their conversion mode (`tflite.MODES`). Not a
# setting: the report compares the int8 ones with `float32_tflite` and checks targets on them.
TFLITE_VARIANTS = {
    "float32_tflite": "float",
    "int8_tflite": "dynamic_range",
    "int8_tflite_full": "full_int8",
}
_TFLITE_NOTES = {
    "float": "the TFLite baseline: float32 weights, activations and index",
    "dynamic_range": "the chosen int8 TFLite: int8 kernels and tables (per-channel), float "
    "activations (quantized on the fly inside the kernels); full-integer loses more, see "
    "`int8_tflite_full`",
    "full_int8": "full-integer: activations calibrated on {examples} training examples and "
    "computed in int8 except `tflite.DEFAULT_FLOAT_OPS` (BROADCAST_TO: its int8 kernel garbles "
    "the position embeddings; DIV: its int8 kernel fails on the zero count of an empty "
    "sequence); reported, not chosen: int8 attention, LayerNorm and pooling activations cost "
    "quality",
}
_NO_SPARSITY: dict[str, Any] = {"overall": None, "per_weight": {}, "unpruned": []}


def saved_variants(
    towers: Mapping[str, variants.Towers],
    table: vocab.ItemTable,
    out: Path,
    root: Path,
    pruned_base: str,
) -> tuple[dict[str, dict[str, Any]], dict[str, artifacts.SavedModelRunner]]:
    """One SavedModel per tower variant, plus `int8_savedmodel` and `<pruned_base>_int8`.

    Each variant's query tower is saved with its own candidate tower's item index; pruned
    ones ship the index int8 (pruning cannot shrink one dense vector per item). `int8_savedmodel`
    is the float32 towers stored int8; `<pruned_base>_int8` the pruned ones, int8 too.

    Args:
        towers: name -> Towers, `float32` and `pruned_base` among them.
        table: ItemTable. The catalog whose items are indexed.
        out: Path. The compression directory; variants go to `<out>/<name>/1`.
        root: Path. Paths in the entries are relative to it.
        pruned_base: str. The least-pruned variant, also stored int8.

    Returns:
        (name -> report entry without measurements, name -> runner of the saved variant).
    """
    found: dict[str, dict[str, Any]] = {}
    saved: dict[str, artifacts.SavedModelRunner] = {}
    for name, tw in towers.items():
        items = inference.item_embeddings(tw.candidate, table)
        is_qat = name.endswith("qat")
        # Pruning cannot shrink the item index (one dense vector per item, a third of the
        # gzipped UCI artifact): pruned artifacts ship it int8, as `int8_savedmodel` does.
        int8_index = tw.target is not None and not is_qat
        path = artifacts.save_savedmodel(
            tw.query, items, table.item_ids, out / name / "1", False, quantize_candidates=int8_index
        )
        saved[name] = artifacts.SavedModelRunner(path)
        weights = "float32 (fake-quant QAT: simulated int8)" if is_qat else "float32"
        found[name] = {
            "format": "savedmodel",
            "path": str(Path(path).relative_to(root)),
            "weights": weights + (" + int8 index" if int8_index else ""),
            "sparsity": variants.sparsity_summary(tw)
            if not is_qat or tw.sparsity
            else dict(_NO_SPARSITY),
            "fine_tune_steps": tw.fine_tune_steps,
            "notes": list(tw.notes),
        }
        if int8_index:
            found[name]["notes"].append(
                "the item index is stored int8 with per-row scales (as in `int8_savedmodel`); "
                "the tower weights stay float32 with their zeros stored densely"
            )
    float_items = saved["float32"].item_index()
    int8_path = artifacts.save_savedmodel(
        towers["float32"].query, float_items, table.item_ids, out / "int8_savedmodel" / "1", True
    )
    saved["int8_savedmodel"] = artifacts.SavedModelRunner(int8_path)
    found["int8_savedmodel"] = {
        "format": "savedmodel",
        "path": str(Path(int8_path).relative_to(root)),
        "weights": "int8 + float16 scales",
        "sparsity": dict(_NO_SPARSITY),
        "int8_tensors": saved["int8_savedmodel"].int8_tensors(),
        "notes": [
            "post-training int8 of the float32 query tower (per-row tables, per-output-channel "
            "kernels: per head and dim for attention projections) and of the candidate index "
            "(per-row scales); biases, norms and tables under 1024 values stay float32; core "
            "TF ops only; the graph holds the tower once, in both this and `float32`",
        ],
    }
    # Pruning and int8 compose: symmetric int8 keeps zeros exact, and the zeros then gzip.
    combined = f"{pruned_base}_int8"
    path = artifacts.save_savedmodel(
        towers[pruned_base].query,
        saved[pruned_base].item_index(),
        table.item_ids,
        out / combined / "1",
        True,
    )
    saved[combined] = artifacts.SavedModelRunner(path)
    found[combined] = {
        "format": "savedmodel",
        "path": str(Path(path).relative_to(root)),
        "weights": f"int8 ({found[pruned_base]['sparsity']['target']:.0%} zeros) + scales",
        # Zeros of the float32 weights it was stored from (int8 keeps them; the per-weight
        # check is `pruned_base`'s).
        "sparsity": {**found[pruned_base]["sparsity"], "per_weight": {}, "unpruned": []},
        "int8_tensors": saved[combined].int8_tensors(),
        "notes": [
            f"`{pruned_base}` stored as `int8_savedmodel` stores float32: pruned and int8 "
            "(its zeros stay exact zeros); the smallest artifact once gzipped"
        ],
    }
    return found, saved


def tflite_variants(
    towers: variants.Towers,
    items: np.ndarray,
    out: Path,
    root: Path,
    calibration: Iterable[Mapping[str, Any]],
    calibration_examples: int,
    test_batches: Sequence[Mapping[str, Any]],
) -> tuple[
    dict[str, dict[str, Any]],
    dict[str, artifacts.TFLiteVariantRunner],
    dict[str, np.ndarray],
    list[str],
]:
    """The float32 towers' query tower as TFLite in each `TFLITE_VARIANTS` mode.

    A variant whose flatbuffer fails at inference on the test queries (an int8 kernel refusing
    its input) is left out and named in the failures; the float one failing is an error.

    Args:
        towers: Towers. The float32 towers.
        items: np.ndarray. Their item index `[num_items, dim]`.
        out: Path. The compression directory; variants go to `<out>/<name>`.
        root: Path. Paths in the entries are relative to it.
        calibration: iterable of raw query-feature batches (full-integer calibration).
        calibration_examples: int. Examples of `calibration` the calibrator reads.
        test_batches: sequence of query-feature batches, in test order.

    Returns:
        (name -> report entry without measurements, name -> runner, name -> its test query
        embeddings `[test queries, dim]`, failures).
    """
    ready = artifacts.tflite_ready(towers.query)
    calibration = list(calibration)
    found: dict[str, dict[str, Any]] = {}
    runners: dict[str, artifacts.TFLiteVariantRunner] = {}
    embedded: dict[str, np.ndarray] = {}
    failures: list[str] = []
    for name, mode in TFLITE_VARIANTS.items():
        directory, achieved = artifacts.save_tflite(
            towers.query,
            items,
            out / name,
            calibration,
            mode,
            calibration_examples=calibration_examples,
            ready=ready,
        )
        runner = artifacts.TFLiteVariantRunner(directory, ready[1])
        try:
            queries = np.concatenate([runner.embed(batch) for batch in test_batches])
        except RuntimeError as e:
            if mode == "float":
                raise
            # An int8 kernel refusing its input: report the variant as failed, measure the rest.
            failures.append(f"`{name}` (mode `{mode}`) fails at inference: {e}")
            continue
        runners[name], embedded[name] = runner, queries
        index = "float32 index" if mode == "float" else "int8 index"
        found[name] = {
            "format": "tflite",
            "path": str(Path(directory).relative_to(root)),
            "weights": f"TFLite {achieved} + {index}",
            "tflite_mode": achieved,
            "sparsity": dict(_NO_SPARSITY),
            "notes": [
                f"TFLite query tower converted in mode `{mode}`, achieved `{achieved}` (read "
                "from its op dtypes); vocabulary lookups run beside the flatbuffer, which takes "
                "integer ids",
                _TFLITE_NOTES[mode].format(examples=calibration_examples),
            ],
        }
        float_ops = tflite_ops.float_compute_ops(runner.blob)
        if mode == "full_int8" and float_ops:
            found[name]["notes"].append(f"ops computing in float: {', '.join(float_ops)}")
    return found, runners, embedded, failures
