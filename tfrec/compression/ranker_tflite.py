"""TFLite flatbuffers of the DCN ranker, evaluated by AUC; the targets pick its int8 mode."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec.compression import artifacts, ranker_data, ranker_tflite_graph, tflite, tflite_ops

if TYPE_CHECKING:
    from tfrec.training import workdir as workdir_lib

# File of a ranker flatbuffer in its variant directory.
TFLITE_FILE = "ranker.tflite"
_FEED_NOTE = (
    "vocabulary lookups run beside the flatbuffer, which takes integer ids only: the "
    "item-vector ids of candidate and history as one input (one gather of the shared table), "
    "and the raw ids `HistoryRepeats` compares as request-local int64 codes (equal ids, equal "
    "codes)"
)


def _conversion_error(error: Exception) -> str:
    """The gist of a TFLite converter error (its MLIR dump runs to many kB)."""
    missing = re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", str(error))
    if missing:
        return f"TF ops without a TFLite builtin kernel: {', '.join(sorted(set(missing)))}"
    return str(error).strip().splitlines()[-1][:200]


class TFLiteRanker:
    """A ranker flatbuffer called like the SavedModel signature: raw features -> head scores.

    One interpreter per batch size: resizing one interpreter between calls of different sizes
    would reallocate its tensors and time the allocation, not the model.

    Args:
        blob: bytes. Flatbuffer of the cut network with one `[batch, heads]` output.
        feed: callable. `artifacts.tflite_ready`'s feed (runs the lookups).
        heads: list of str. Output columns, in order.
    """

    def __init__(self, blob: bytes, feed: ranker_tflite_graph.Feed, heads: Sequence[str]) -> None:
        self.blob, self.feed, self.heads = blob, feed, list(heads)
        self._runners = {0: tflite.TFLiteRunner(blob)}
        self.mode = self._runners[0].mode

    def __call__(self, **features: Any) -> dict[str, np.ndarray]:
        size = int(np.shape(next(iter(features.values())))[0])
        if size not in self._runners:
            self._runners[size] = tflite.TFLiteRunner(self.blob)
        outputs = self._runners[size].predict(self.feed(features))
        if isinstance(outputs, dict):
            raise ValueError(
                f"`blob` must have one `[batch, heads]` output, received outputs {sorted(outputs)}"
            )
        got = np.reshape(outputs, [-1, len(self.heads)])
        return {h: got[:, i] for i, h in enumerate(self.heads)}


def _convert(
    model: tf.keras.Model, mode: str, calibration: list[dict[str, Any]]
) -> tuple[Optional[bytes], Optional[str]]:
    """(flatbuffer, None) or (None, why `mode` failed); calibrates on every example given."""
    try:
        data = calibration if mode == "full_int8" else None
        examples = sum(len(next(iter(batch.values()))) for batch in calibration)
        blob = tflite.to_tflite(model, data, mode, num_calibration_samples=max(1, examples))
        return blob, None
    except ValueError as e:
        return None, f"`{mode}` conversion failed: {_conversion_error(e)}"


def _evaluate(
    blob: bytes, feed: ranker_tflite_graph.Feed, heads: Sequence[str], test: tf.data.Dataset
) -> tuple[Optional[TFLiteRanker], Any]:
    """(runner, AUC dict) or (None, why inference failed: an int8 kernel refusing its input)."""
    runner = TFLiteRanker(blob, feed, heads)
    try:
        return runner, ranker_data.auc(lambda f: runner(**f), test, heads)
    except RuntimeError as e:
        return None, f"`{runner.mode}` flatbuffer fails at inference: {str(e).strip()[:200]}"


def _misses_targets(
    quality: dict[str, Any],
    base: dict[str, Any],
    size: int,
    base_size: int,
    settings: config_lib.CompressionConfig,
) -> list[str]:
    """How a full-int8 ranker misses the int8 targets against the float TFLite one (if so).

    Args:
        quality: dict. Its `ranker_data.auc` result.
        base: dict. The float TFLite ranker's `ranker_data.auc` result.
        size: int. Its raw bytes.
        base_size: int. The float TFLite ranker's raw bytes.
        settings: CompressionConfig. `max_relative_quality_loss` and `int8_size_ratio`.

    Returns:
        List of str, empty when both targets are met.
    """
    missed = []
    max_loss, max_ratio = settings.max_relative_quality_loss, settings.int8_size_ratio
    if quality.get("auc") is None or not base.get("auc"):
        missed.append("has no AUC to compare (no binary head)")
    else:
        loss = (base["auc"] - quality["auc"]) / base["auc"]
        if loss > max_loss:
            missed.append(f"loses {loss:.2%} of the float AUC (> {max_loss:.0%})")
    if size > max_ratio * base_size:
        missed.append(f"is {size / base_size:.1%} of the float size (> {max_ratio:.0%})")
    return missed


def tflite_variants(
    network: tf.keras.Model,
    train: tf.data.Dataset,
    out: Path,
    wd: workdir_lib.Workdir,
    found: dict[str, dict[str, Any]],
    test: tf.data.Dataset,
    heads: Sequence[str],
    settings: config_lib.CompressionConfig = config_lib.CompressionConfig(),
) -> dict[str, TFLiteRanker]:
    """Float and int8 TFLite rankers; returns name -> callable(**features) -> outputs dict.

    The lookups are cut out (`artifacts.tflite_ready`), so the flatbuffers hold no hash tables
    and full-integer calibration runs on integer ids. `ranker_int8_tflite` is full-int8
    (calibrated on `settings.ranker_calibration_examples` training examples) when it converts,
    runs and meets the int8 targets against the float TFLite ranker
    (`settings.max_relative_quality_loss`, `settings.int8_size_ratio`); otherwise it is
    dynamic range, and a working full-int8 flatbuffer is still reported as
    `ranker_int8_tflite_full`. Why a mode failed or was not chosen goes into the notes. Sizes
    and latency are added by `ranker.compress`.

    Args:
        network: tf.keras.Model. The trained ranking network.
        train: tf.data.Dataset. Training (features, labels) batches: calibration.
        out: Path. The compression directory; variants go to `<out>/<name>`.
        wd: Workdir. The run (paths in `found` are relative to its root).
        found: dict. Variant name -> variant dict: entries are added, notes appended to
            `ranker_float32`'s.
        test: tf.data.Dataset. Test (features, labels) batches: AUC.
        heads: sequence of str. The ranker's heads.
        settings: CompressionConfig. Calibration size and int8 targets.

    Returns:
        Variant name -> `TFLiteRanker`.
    """
    try:
        model, feed = artifacts.tflite_ready(network)
    except ValueError as e:
        found["ranker_float32"]["notes"].append(f"TFLite rankers missing: {e}")
        return {}
    model, feed = ranker_tflite_graph.gather_once(*ranker_tflite_graph.code_string_ids(model, feed))
    model = ranker_tflite_graph.stack_heads(model, heads)
    calibration = _calibration(train, feed, settings.ranker_calibration_examples)
    blob, failure = _convert(model, "float", calibration)
    if blob is None:
        found["ranker_float32"]["notes"].append(f"TFLite rankers missing: {failure}")
        return {}
    callables: dict[str, TFLiteRanker] = {}
    base, quality = _evaluate(blob, feed, heads, test)
    if base is None:
        raise RuntimeError(f"the float TFLite ranker fails at inference: {quality}")
    why = "mode `float`: the baseline of the TFLite rankers"
    _record(found, callables, "ranker_float32_tflite", base, quality, out, wd, [why])
    full, reasons = _full_int8(model, calibration, feed, heads, test, base, quality, settings)
    if full is not None and not reasons:
        auc, base_auc = full[1]["auc"], quality["auc"]
        why = (
            f"full-integer, calibrated on {settings.ranker_calibration_examples} training "
            "examples: AUC "
            f"{(auc - base_auc) / base_auc:+.2%} and {len(full[0].blob) / len(blob):.1%} of the "
            "size of the float flatbuffer, within the int8 targets"
        )
        _record(found, callables, "ranker_int8_tflite", full[0], full[1], out, wd, [why])
        return callables
    if full is not None:
        why = f"not `ranker_int8_tflite`: it {' and '.join(reasons)}"
        _record(found, callables, "ranker_int8_tflite_full", full[0], full[1], out, wd, [why])
    dynamic, failure = _convert(model, "dynamic_range", calibration)
    evaluated: tuple[Optional[TFLiteRanker], Any] = (
        (None, failure) if dynamic is None else _evaluate(dynamic, feed, heads, test)
    )
    runner, quality = evaluated
    if runner is None:
        found["ranker_float32"]["notes"].append(
            f"`ranker_int8_tflite` missing: {'; '.join([*reasons, quality])}"
        )
        return callables
    why = "dynamic range (int8 weights, float activations), chosen as full-int8 "
    why += " and ".join(reasons)
    _record(found, callables, "ranker_int8_tflite", runner, quality, out, wd, [why])
    return callables


def _calibration(
    train: tf.data.Dataset, feed: ranker_tflite_graph.Feed, examples: int
) -> list[dict[str, Any]]:
    """The first `examples` training examples, fed: what full-integer conversion calibrates on."""
    batches, count = [], 0
    for features, _ in train:
        fed = feed(features)
        rows = len(next(iter(fed.values())))
        take = min(rows, examples - count)
        batches.append({k: np.asarray(v)[:take] for k, v in fed.items()})
        count += take
        if count >= examples:
            return batches
    return batches


def _full_int8(
    model: tf.keras.Model,
    calibration: list[dict[str, Any]],
    feed: ranker_tflite_graph.Feed,
    heads: Sequence[str],
    test: tf.data.Dataset,
    base: TFLiteRanker,
    base_quality: dict[str, Any],
    settings: config_lib.CompressionConfig,
) -> tuple[Optional[tuple[TFLiteRanker, dict[str, Any]]], list[str]]:
    """((runner, quality) or None, reasons it cannot be `ranker_int8_tflite`)."""
    blob, failure = _convert(model, "full_int8", calibration)
    if blob is None:
        return None, [f"failed: {failure}"]
    runner, quality = _evaluate(blob, feed, heads, test)
    if runner is None:
        return None, [f"failed: {quality}"]
    missed = _misses_targets(quality, base_quality, len(blob), len(base.blob), settings)
    return (runner, quality), missed


def _record(
    found: dict[str, dict[str, Any]],
    callables: dict[str, TFLiteRanker],
    name: str,
    runner: TFLiteRanker,
    quality: dict[str, Any],
    out: Path,
    wd: workdir_lib.Workdir,
    notes: list[str],
) -> None:
    """Writes `runner`'s flatbuffer under `out / name` and its variant entry into `found`."""
    directory = out / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / TFLITE_FILE).write_bytes(runner.blob)
    mode = runner.mode
    notes = [
        f"TFLite ranking network, achieved mode `{mode}` (read from its op dtypes); {_FEED_NOTE}",
        *notes,
    ]
    float_ops = tflite_ops.float_compute_ops(runner.blob)
    if mode in ("full_int8", "mixed") and float_ops:
        notes.append(f"ops computing in float: {', '.join(float_ops)}")
    found[name] = {
        "format": "tflite",
        "path": str(directory.relative_to(wd.root)),
        "weights": f"TFLite {mode}",
        "tflite_mode": mode,
        "sparsity": {"overall": None, "per_weight": {}, "unpruned": []},
        "notes": notes,
        "quality": quality,
    }
    callables[name] = runner
