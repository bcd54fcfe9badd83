"""Compressed variants of the trained DCN ranker: pruned, QAT, int8 SavedModel and TFLite, with AUC."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import inference
from tfrec.compression import (
    artifacts,
    distill,
    graph,
    int8_savedmodel,
    pruning,
    qat,
    sizes,
    tflite,
    tflite_ops,
    variants,
)
from tfrec.compression import report as report_lib
from tfrec.data import prepared as prepared_lib

if TYPE_CHECKING:  # imported where used: the ranking package is optional
    from tfrec.models import retrieval
    from tfrec.training import workdir as workdir_lib

# A feed: raw feature batch -> what the cut network (or flatbuffer) takes.
Feed = Callable[[Mapping[str, Any]], dict[str, Any]]


def available(workdir: os.PathLike | str) -> bool:
    """True when the ranking package can load a ranker and `workdir` holds a trained one.

    Args:
        workdir: str or path-like. A trained run.

    Returns:
        bool.
    """
    if importlib.util.find_spec("tfrec.ranking.training") is None:
        return False
    from tfrec.ranking import training

    return training.has_ranker(workdir)


def _datasets(
    config: config_lib.Config,
    workdir: Path,
    prepared: prepared_lib.PreparedData,
    retrieval_model: retrieval.RetrievalModel,
    heads: Sequence[str],
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    from tfrec.models import repeat_prior
    from tfrec.ranking import dataset, sampling, training
    from tfrec.training import workdir as workdir_lib

    item_vectors = inference.item_embeddings(retrieval_model.candidate_model, prepared.table)
    prior = repeat_prior.RepeatPrior.load(workdir_lib.Workdir(workdir).repeat_prior)
    common: dict[str, Any] = dict(
        retrieval_model=retrieval_model, heads=heads, item_vectors=item_vectors, prior=prior
    )
    seed, split = config.train.seed, prepared.split
    catalog = sampling.ranking_catalog(prepared)
    # The ranker's own training window (by default the start of the validation window, where
    # the retrieval scores it reads are as on live traffic).
    (start, end), _ = training.example_windows(config.ranking, split)
    train_q, train_pairs = sampling.labeled_examples(
        config,
        prepared,
        start=start,
        end=end,
        max_positives=training.MAX_TRAIN_POSITIVES,
        seed=seed,
        **common,
    )
    test_q, test_pairs = sampling.labeled_examples(
        config,
        prepared,
        start=split.test_start,
        end=None,
        max_positives=sampling.MAX_EVAL_POSITIVES,
        seed=seed + 2,
        **common,
    )
    train = dataset.make_dataset(
        train_pairs, train_q, catalog, heads, config.ranking.batch_size, shuffle_seed=seed + 1
    ).repeat()
    test = dataset.make_dataset(test_pairs, test_q, catalog, heads, 1024)
    return train, test


def _prunable(layer: tf.keras.layers.Layer) -> bool:
    # A frozen layer (the item-vector table copied from the retrieval tower) is not the ranker's
    # to prune: zeroing it would change the items' meaning with no fine-tuning to compensate.
    # DCN's `Cross(x0, x)` takes two inputs; `graph.rebuild` passes the second by name.
    return layer.trainable


def _fine_tune(
    network: tf.keras.Model,
    teacher: tf.keras.Model,
    heads: Sequence[str],
    loss_weights: Mapping[str, float],
    data: tf.data.Dataset,
    steps: int,
    rate: float,
    cbs: Iterable[tf.keras.callbacks.Callback] = (),
) -> None:
    """Fine-tunes `network` in place by distillation from `teacher` (`distill.DistilledRanker`).

    Labels are not used: like the towers' (see `tfrec.compression.distill`), the compressed
    ranker should score like the ranker it was made from, not keep training past the epoch
    the ranker's own validation picked.
    """
    from tfrec.ranking import examples

    model = distill.DistilledRanker(
        network,
        teacher,
        {h: loss_weights.get(h, 1.0) for h in heads},
        regression_heads=[h for h in heads if h in examples.REGRESSION_HEADS],
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(rate))
    model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=list(cbs), verbose=0)


def _auc(
    outputs_fn: Callable[[Any], Mapping[str, Any]], test: tf.data.Dataset, heads: Sequence[str]
) -> dict[str, Any]:
    from tfrec.ranking import metrics

    labels, outputs = [], []
    for features, batch_labels in test:
        got = outputs_fn(features)
        labels.append(np.concatenate([np.reshape(batch_labels[h], [-1, 1]) for h in heads], 1))
        outputs.append(np.concatenate([np.reshape(got[h], [-1, 1]) for h in heads], 1))
    per_head = metrics.head_metrics(np.concatenate(labels), np.concatenate(outputs), heads)
    aucs = [m["auc"] for m in per_head.values() if "auc" in m]
    return {"auc": float(np.mean(aucs)) if aucs else None, "per_head": per_head}


def compress(
    config: config_lib.Config,
    wd: workdir_lib.Workdir,
    prepared: prepared_lib.PreparedData,
    retrieval_model: retrieval.RetrievalModel,
    targets: Sequence[float],
    steps: int,
    qat_steps: int,
    out: Path,
    calls: int,
    batch: int,
) -> dict[str, dict[str, Any]]:
    """Ranker variants measured like the towers; returns name -> variant dict (`ranker_*`).

    Args:
        config: Config. The run config.
        wd: Workdir. The run holding the trained ranker.
        prepared: PreparedData. The run's data.
        retrieval_model: RetrievalModel. The trained retrieval model feeding the ranker.
        targets: sequence of float. Pruning targets in (0, 1).
        steps: int. Fine-tuning steps of each pruned variant.
        qat_steps: int. Fine-tuning steps of the QAT variant.
        out: Path. The compression directory variants are written to.
        calls: int. Timed calls per variant and batch size.
        batch: int. Size of the batched-latency request.

    Returns:
        Variant name -> variant dict, as `compress_workdir` reports them.
    """
    from tfrec.ranking import training

    ranker = training.load_ranker(config, wd.root, prepared, retrieval_model)
    heads, weights = ranker.heads, ranker.loss_weights
    train, test = _datasets(config, wd.root, prepared, retrieval_model, heads)
    rate = config.ranking.learning_rate
    networks = {"ranker_float32": ranker.network}
    notes: dict[str, list[str]] = {
        "ranker_float32": ["the trained ranking network (best checkpoint)"]
    }
    sparsity: dict[str, dict[str, Any]] = {}
    end_step, frequency = variants.schedule(steps)
    for target in targets:
        name = f"ranker_pruned_{round(target * 100):d}"
        pruned = pruning.prune(
            ranker.network,
            target,
            end_step=end_step,
            frequency=frequency,
            layer_filter=_prunable,
        )
        log_dir = str(wd.tb / "compression" / name)
        _fine_tune(
            pruned, ranker.network, heads, weights, train, steps, rate, pruning.callbacks(log_dir)
        )
        networks[name] = pruning.strip(pruned)
        measured = pruning.measure_sparsity(networks[name])
        names = pruning.pruned_weight_names(pruned)
        zeros, total = pruning.zero_counts(networks[name])
        pruned_zeros, pruned_total = pruning.zero_counts(networks[name], names)
        sparsity[name] = {
            "overall": zeros / total,
            "pruned_weights": pruned_zeros / pruned_total,
            "target": target,
            "per_weight": {n: measured[n] for n in names},
            "unpruned": [
                n
                for n, w in pruning.named_weights(networks[name]).items()
                if n not in names and n.endswith(("kernel", "embeddings")) and w.shape.rank >= 2
            ],
        }
        notes[name] = [
            f"fine-tuned {steps} steps by distillation from the float32 ranker (labels unused); "
            "every trainable kernel and table pruned, DCN cross "
            "layers included; the frozen item-vector table (a copy of the retrieval item "
            "embeddings) stays dense"
        ]
    networks["ranker_qat"] = qat.quantize_aware(ranker.network)
    _fine_tune(networks["ranker_qat"], ranker.network, heads, weights, train, qat_steps, rate)
    notes["ranker_qat"] = [
        f"fake-quant QAT, {qat_steps} steps of distillation from the float32 ranker: float32 "
        "weights (simulated int8)"
    ]

    found: dict[str, dict[str, Any]] = {}
    runners: dict[str, Callable[..., Mapping[str, Any]]] = {}
    for name, network in networks.items():
        path = out / name / "1"
        int8_savedmodel.save(int8_savedmodel.Int8Model(network, quantize=False), path)
        runners[name] = tf.saved_model.load(str(path)).signatures["serving_default"]
    path = out / "ranker_int8_savedmodel" / "1"
    int8_savedmodel.save(int8_savedmodel.Int8Model(ranker.network), path)
    runners["ranker_int8_savedmodel"] = tf.saved_model.load(str(path)).signatures["serving_default"]
    notes["ranker_int8_savedmodel"] = ["post-training int8 weights + float16 scales, core TF ops"]
    for name, fn in runners.items():
        found[name] = {
            "format": "savedmodel",
            "path": str((out / name / "1").relative_to(wd.root)),
            "weights": "int8 + float16 scales"
            if "int8" in name
            else ("float32 (fake-quant QAT: simulated int8)" if "qat" in name else "float32"),
            "sparsity": sparsity.get(name, {"overall": None, "per_weight": {}, "unpruned": []}),
            "notes": notes[name],
        }
        found[name]["quality"] = _auc(_by_keywords(fn), test, heads)
    tfl = _tflite(ranker.network, train, out, wd, found, test, heads)
    runners.update(tfl)
    features = next(iter(test))[0]
    requests = {
        "batch_1": {k: v[:1] for k, v in features.items()},
        f"batch_{batch}": {k: v[:batch] for k, v in features.items()},
    }
    timed = report_lib.measure_latency(
        {
            (n, key): functools.partial(fn, **b)
            for n, fn in runners.items()
            for key, b in requests.items()
        },
        calls,
    )
    for (name, key), stats in timed.items():
        found[name].setdefault("latency", {})[key] = stats
    for name in found:
        found[name]["size"] = sizes.size_on_disk(wd.root / found[name]["path"])
        if found[name]["format"] == "savedmodel":
            found[name]["size"]["parts"] = sizes.savedmodel_parts(wd.root / found[name]["path"])
    return found


def _by_keywords(
    fn: Callable[..., Mapping[str, Any]],
) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    """`fn` taking a feature dict as its keyword arguments, as a signature takes features."""
    return lambda features: fn(**features)


def _conversion_error(error: Exception) -> str:
    """The gist of a TFLite converter error (its MLIR dump runs to many kB)."""
    missing = re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", str(error))
    if missing:
        return f"TF ops without a TFLite builtin kernel: {', '.join(sorted(set(missing)))}"
    return str(error).strip().splitlines()[-1][:200]


# File of a ranker flatbuffer in its variant directory.
TFLITE_FILE = "ranker.tflite"
# Training batches, and examples of them, calibrating full-integer activation ranges.
CALIBRATION_BATCHES = 4
CALIBRATION_SAMPLES = 512
# Full-int8 is `ranker_int8_tflite` only if it meets the int8 targets against the
# float TFLite ranker: relative AUC loss and raw size.
MAX_RELATIVE_AUC_LOSS = report_lib.TARGETS["max_relative_quality_loss"]
MAX_SIZE_RATIO = report_lib.TARGETS["int8_size_ratio"]
_FEED_NOTE = (
    "vocabulary lookups run beside the flatbuffer, which takes integer ids only: the "
    "item-vector ids of candidate and history as one input (one gather of the shared table), "
    "and the raw ids `HistoryRepeats` compares as request-local int64 codes (equal ids, equal "
    "codes)"
)
# Layers that only test their string inputs for equality: request-local codes can replace them.
_EQUALITY_ONLY = ("HistoryRepeats",)


class _TFLiteRanker:
    """A ranker flatbuffer called like the SavedModel signature: raw features -> head scores.

    One interpreter per batch size: resizing one interpreter between calls of different sizes
    would reallocate its tensors and time the allocation, not the model.

    Args:
        blob: bytes. Flatbuffer of the cut network with one `[batch, heads]` output.
        feed: callable. `artifacts.tflite_ready`'s feed (runs the lookups).
        heads: list of str. Output columns, in order.
    """

    def __init__(self, blob: bytes, feed: Feed, heads: Sequence[str]) -> None:
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


def _code_string_ids(model: tf.keras.Model, feed: Feed) -> tuple[tf.keras.Model, Feed]:
    """The cut ranker taking int64 codes for its raw string ids, and the feed that codes them.

    The TFLite calibrator mishandles string inputs: calibrating the tiny ranker, its
    `HistoryRepeats` saw no repeat, so full-int8 gave the repeat counts a scale near zero and
    served them as ~1e-6 (every repeat feature lost; on UCI the full-int8 AUC fell 3.7%, with
    codes 0.2%). That layer only tests ids for equality, so codes numbering each request's
    distinct ids compute the same counts.

    Args:
        model: tf.keras.Model. `artifacts.tflite_ready`'s cut ranker (dict inputs).
        feed: callable. Its feed.

    Returns:
        (model, feed), unchanged when a string input reaches another layer.
    """
    strings = sorted(n for n, x in model.input.items() if x.dtype == tf.string)
    readers = {
        type(node.layer).__name__ for n in strings for node in model.get_layer(n)._outbound_nodes
    }
    if not strings or not readers <= set(_EQUALITY_ONLY):
        return model, feed
    coded = graph.rebuild(model, input_dtypes={n: tf.int64 for n in strings})

    def coded_feed(features: Mapping[str, Any]) -> dict[str, Any]:
        fed, codes = feed(features), dict[Any, int]()
        for name in strings:
            values = np.asarray(fed[name])
            flat = [v.encode() if isinstance(v, str) else v for v in values.ravel().tolist()]
            numbered = [codes.setdefault(v, len(codes)) for v in flat]
            fed[name] = np.asarray(numbered, np.int64).reshape(values.shape)
        return fed

    return coded, coded_feed


def _gather_once(model: tf.keras.Model, feed: Feed) -> tuple[tf.keras.Model, Feed]:
    """The cut ranker gathering each shared embedding table once, and the feed for it.

    The TFLite quantizer gives each GATHER its own int8 scale, so a table called at two sites
    is stored twice in a full-int8 flatbuffer: the UCI ranker's item vectors (candidate and
    history) made it 41% of the float flatbuffer instead of 27%. Here the table's ids from all
    its calls arrive as one input `<table>_ids` `[batch, total]`: one gather, split back into
    the vectors each call site read. Same table, same vectors.

    Args:
        model: tf.keras.Model. The cut ranker (dict inputs), ids from lookups as inputs.
        feed: callable. Its feed.

    Returns:
        (model, feed), unchanged when no table is shared or a shared one reads computed ids
        (or ids of unknown width).
    """
    shared = {
        layer.name: graph.call_nodes(model, layer)
        for layer in model.layers
        if isinstance(layer, tf.keras.layers.Embedding) and len(graph.call_nodes(model, layer)) > 1
    }
    sources = {
        name: [tf.nest.flatten(node.keras_inputs)[0] for node in nodes]
        for name, nodes in shared.items()
    }
    if not shared or any(
        x._keras_history.layer.name not in model.input or None in x.shape[1:]
        for ids in sources.values()
        for x in ids
    ):
        return model, feed
    core = graph.rebuild(model, cut=lambda layer: layer.name in shared)
    cut = {graph.cut_input_name(t, i) for t, nodes in shared.items() for i in range(len(nodes))}
    inputs = {n: x for n, x in core.input.items() if n not in cut}
    fed_to_core = dict(inputs)
    for name, ids in sources.items():
        widths = [int(np.prod(x.shape[1:])) for x in ids]
        merged = tf.keras.Input(shape=(sum(widths),), dtype=tf.int64, name=f"{name}_ids")
        inputs[f"{name}_ids"] = merged
        original = model.get_layer(name)
        table = type(original).from_config(original.get_config())
        vectors = table(merged)
        table.set_weights(original.get_weights())
        parts = tf.split(vectors, widths, axis=1)
        for i, (part, x) in enumerate(zip(parts, ids, strict=True)):
            shape = [-1, *x.shape[1:], vectors.shape[-1]]
            fed_to_core[graph.cut_input_name(name, i)] = tf.reshape(part, shape)
    merged_model = tf.keras.Model(inputs, core(fed_to_core), name=model.name)

    def merged_feed(features: Mapping[str, Any]) -> dict[str, Any]:
        fed = feed(features)
        for name, ids in sources.items():
            arrays = [np.asarray(fed[x._keras_history.layer.name]) for x in ids]
            flat = [np.reshape(a, [a.shape[0], -1]) for a in arrays]
            fed[f"{name}_ids"] = np.concatenate(flat, axis=1).astype(np.int64)
        return fed

    return merged_model, merged_feed


def _stack_heads(model: tf.keras.Model, heads: Sequence[str]) -> tf.keras.Model:
    """`model` with one `[batch, heads]` output in head order: TFLite renames a dict's outputs."""
    columns = [tf.keras.layers.Reshape((1,), name=f"{h}_column")(model.output[h]) for h in heads]
    stacked = tf.keras.layers.Concatenate(name="heads")(columns) if len(heads) > 1 else columns[0]
    return tf.keras.Model(model.input, stacked)


def _convert(
    model: tf.keras.Model, mode: str, calibration: list[dict[str, Any]]
) -> tuple[Optional[bytes], Optional[str]]:
    """(flatbuffer, None) or (None, why `mode` failed)."""
    try:
        data = calibration if mode == "full_int8" else None
        blob = tflite.to_tflite(model, data, mode, num_calibration_samples=CALIBRATION_SAMPLES)
        return blob, None
    except ValueError as e:
        return None, f"`{mode}` conversion failed: {_conversion_error(e)}"


def _evaluate(
    blob: bytes, feed: Feed, heads: Sequence[str], test: tf.data.Dataset
) -> tuple[Optional[_TFLiteRanker], Any]:
    """(runner, AUC dict) or (None, why inference failed: an int8 kernel refusing its input)."""
    runner = _TFLiteRanker(blob, feed, heads)
    try:
        return runner, _auc(lambda f: runner(**f), test, heads)
    except RuntimeError as e:
        return None, f"`{runner.mode}` flatbuffer fails at inference: {str(e).strip()[:200]}"


def _misses_targets(
    quality: dict[str, Any], base: dict[str, Any], size: int, base_size: int
) -> list[str]:
    """How a full-int8 ranker misses the int8 targets against the float TFLite one (if so).

    Args:
        quality: dict. Its `_auc` result.
        base: dict. The float TFLite ranker's `_auc` result.
        size: int. Its raw bytes.
        base_size: int. The float TFLite ranker's raw bytes.

    Returns:
        List of str, empty when both targets are met.
    """
    missed = []
    if quality.get("auc") is None or not base.get("auc"):
        missed.append("has no AUC to compare (no binary head)")
    else:
        loss = (base["auc"] - quality["auc"]) / base["auc"]
        if loss > MAX_RELATIVE_AUC_LOSS:
            missed.append(f"loses {loss:.2%} of the float AUC (> {MAX_RELATIVE_AUC_LOSS:.0%})")
    if size > MAX_SIZE_RATIO * base_size:
        missed.append(f"is {size / base_size:.1%} of the float size (> {MAX_SIZE_RATIO:.0%})")
    return missed


def _tflite(
    network: tf.keras.Model,
    train: tf.data.Dataset,
    out: Path,
    wd: workdir_lib.Workdir,
    found: dict[str, dict[str, Any]],
    test: tf.data.Dataset,
    heads: Sequence[str],
) -> dict[str, _TFLiteRanker]:
    """Float and int8 TFLite rankers; returns name -> callable(**features) -> outputs dict.

    The lookups are cut out (`artifacts.tflite_ready`), so the flatbuffers hold no hash tables
    and full-integer calibration runs on integer ids. `ranker_int8_tflite` is full-int8
    (calibrated on a few training batches) when it converts, runs and meets the int8 targets
    against the float TFLite ranker (`MAX_RELATIVE_AUC_LOSS`, `MAX_SIZE_RATIO`); otherwise it
    is dynamic range, and a working full-int8 flatbuffer is still reported as
    `ranker_int8_tflite_full`. Why a mode failed or was not chosen goes into the notes. Sizes
    and latency are added by `compress`.
    """
    try:
        model, feed = artifacts.tflite_ready(network)
    except ValueError as e:
        found["ranker_float32"]["notes"].append(f"TFLite rankers missing: {e}")
        return {}
    model, feed = _gather_once(*_code_string_ids(model, feed))
    model = _stack_heads(model, heads)
    calibration = [feed(f) for f, _ in train.take(CALIBRATION_BATCHES)]
    blob, failure = _convert(model, "float", calibration)
    if blob is None:
        found["ranker_float32"]["notes"].append(f"TFLite rankers missing: {failure}")
        return {}
    callables: dict[str, _TFLiteRanker] = {}
    base, quality = _evaluate(blob, feed, heads, test)
    if base is None:
        raise RuntimeError(f"the float TFLite ranker fails at inference: {quality}")
    why = "mode `float`: the baseline of the TFLite rankers"
    _record(found, callables, "ranker_float32_tflite", base, quality, out, wd, [why])
    full, reasons = _full_int8(model, calibration, feed, heads, test, base, quality)
    if full is not None and not reasons:
        auc, base_auc = full[1]["auc"], quality["auc"]
        why = (
            f"full-integer, calibrated on {CALIBRATION_SAMPLES} training examples: AUC "
            f"{(auc - base_auc) / base_auc:+.2%} and {len(full[0].blob) / len(blob):.1%} of the "
            "size of the float flatbuffer, within the int8 targets"
        )
        _record(found, callables, "ranker_int8_tflite", full[0], full[1], out, wd, [why])
        return callables
    if full is not None:
        why = f"not `ranker_int8_tflite`: it {' and '.join(reasons)}"
        _record(found, callables, "ranker_int8_tflite_full", full[0], full[1], out, wd, [why])
    dynamic, failure = _convert(model, "dynamic_range", calibration)
    evaluated: tuple[Optional[_TFLiteRanker], Any] = (
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


def _full_int8(
    model: tf.keras.Model,
    calibration: list[dict[str, Any]],
    feed: Feed,
    heads: Sequence[str],
    test: tf.data.Dataset,
    base: _TFLiteRanker,
    base_quality: dict[str, Any],
) -> tuple[Optional[tuple[_TFLiteRanker, dict[str, Any]]], list[str]]:
    """((runner, quality) or None, reasons it cannot be `ranker_int8_tflite`)."""
    blob, failure = _convert(model, "full_int8", calibration)
    if blob is None:
        return None, [f"failed: {failure}"]
    runner, quality = _evaluate(blob, feed, heads, test)
    if runner is None:
        return None, [f"failed: {quality}"]
    return (runner, quality), _misses_targets(quality, base_quality, len(blob), len(base.blob))


def _record(
    found: dict[str, dict[str, Any]],
    callables: dict[str, _TFLiteRanker],
    name: str,
    runner: _TFLiteRanker,
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
