"""`tfrec compress`: pruned, QAT and int8 variants of a trained run, measured in one report."""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import precision
from tfrec.compression import artifacts, ranker, ranker_data, sizes, tower_exports, variants
from tfrec.compression import report as report_lib
from tfrec.data import pipeline
from tfrec.data import prepared as prepared_lib
from tfrec.models import repeat_prior
from tfrec.training import trainer


def resolve_config(
    config: config_lib.Config,
    overrides: Sequence[str] = (),
    **settings: Any,
) -> config_lib.Config:
    """`config` with its `compression` section changed for one run, checked.

    Args:
        config: Config. A trained model's config.
        overrides: sequence of str. `compression.key=value` (YAML values), as `--set` takes.
        **settings: `CompressionConfig` fields given as values (None: keep the config's),
            applied after `overrides`.

    Returns:
        The config to compress with.

    Raises:
        errors.ConfigError: a key outside `compression`, unknown, of the wrong type or out of
            range (the message names the key).
    """
    texts = list(overrides) + [
        f"compression.{key}={json.dumps(list(v) if isinstance(v, tuple) else v)}"
        for key, v in settings.items()
        if v is not None
    ]
    return config_lib.with_overrides(config, texts, allowed=("compression",))


def _variant_name(target: float) -> str:
    return f"pruned_{round(target * 100):d}"


def _latency_batches(
    prepared: prepared_lib.PreparedData, batch_size: int
) -> dict[str, dict[str, tf.Tensor]]:
    """Request batches drawn from the test queries: one query, and `batch_size` queries."""
    ds = pipeline.query_dataset(prepared.test, prepared.spec, batch_size)
    first = next(iter(ds))
    rows = int(next(iter(first.values())).shape[0])
    # Fewer test queries than the batch: repeat them, the cost depends on the shape only.
    reps = -(-batch_size // rows)
    big = {k: tf.concat([v] * reps, axis=0)[:batch_size] for k, v in first.items()}
    return {"batch_1": {k: v[:1] for k, v in first.items()}, f"batch_{batch_size}": big}


def compress_workdir(
    workdir: os.PathLike | str,
    *,
    sparsities: Optional[Sequence[float]] = None,
    fine_tune_steps: Optional[int] = None,
    qat_steps: Optional[int] = None,
    latency_calls: Optional[int] = None,
    latency_batch_size: Optional[int] = None,
    overrides: Sequence[str] = (),
    prepared: Optional[prepared_lib.PreparedData] = None,
) -> dict[str, Any]:
    """Builds every variant of `workdir`'s trained towers, exports, measures and reports them.

    Writes `compression/` into the model artifact: one SavedModel version per variant
    (`<name>/1`, loadable by `tfrec serve` and TF Serving), TFLite query towers with their item
    index, `report.json` and `report.md`; pruning summaries go to its `tb/compression`.

    What is made and how it is measured is the trained config's `compression` section
    (`config.CompressionConfig`); `overrides` and the keyword settings change it for this run.

    Args:
        workdir: str or path-like. A model artifact, or a trained run holding one (`tfrec train`).
        sparsities: sequence of float or None. `compression.sparsities`.
        fine_tune_steps: int or None. `compression.fine_tune_steps`.
        qat_steps: int or None. `compression.qat_steps`.
        latency_calls: int or None. `compression.latency_calls`.
        latency_batch_size: int or None. `compression.latency_batch_size`.
        overrides: sequence of str. `compression.key=value` settings (`--set`).
        prepared: PreparedData or None. Reused when given.

    Returns:
        The report dict (also written as JSON and Markdown).
    """
    settings = dict(
        sparsities=sparsities,
        fine_tune_steps=fine_tune_steps,
        qat_steps=qat_steps,
        latency_calls=latency_calls,
        latency_batch_size=latency_batch_size,
    )
    # On the defaults first: a bad value is refused before the artifact is even looked for.
    resolve_config(config_lib.Config(), overrides, **settings)
    art = artifact_lib.Artifact(workdir)
    config = resolve_config(art.config, overrides, **settings)
    wd, s = art.workdir, config.compression
    targets = sorted(set(s.sparsities))
    qat_steps = s.fine_tune_steps if s.qat_steps is None else s.qat_steps
    start = time.perf_counter()
    out = wd.root / "compression"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # TF-MOT wrappers and int8 conversion need float32 layers, whatever the run trained in.
    precision.set_policy("float32")
    prepared = prepared or art.prepared()
    model = trainer.load_trained(config, wd.root, prepared)
    towers = _tower_variants(config, prepared, model, targets, qat_steps, wd.tb / "compression")
    pruned_base = _variant_name(targets[0])

    prior = repeat_prior.RepeatPrior.load(wd.repeat_prior) if wd.repeat_prior.is_file() else None
    context = report_lib.EvalContext(prepared, config.eval.exclude_seen, prior)
    # Every variant embeds the same test queries: batched once.
    test_batches = list(pipeline.query_dataset(prepared.test, prepared.spec, 1024))
    found, saved = tower_exports.saved_variants(towers, prepared.table, out, wd.root, pruned_base)
    runners: dict[str, artifacts.SavedModelRunner | artifacts.TFLiteVariantRunner] = dict(saved)
    embedded = {
        name: np.concatenate([runner.embed(batch) for batch in test_batches])
        for name, runner in saved.items()
    }
    batch_size = config.train.batch_size
    calibration = (
        variants.training_dataset(config, prepared)
        .map(variants.query_features)
        .take(-(-s.tower_calibration_examples // batch_size))
    )
    if config.model.text_encoder.mode == "scratch":
        tflite_found, tflite_runners, tflite_queries, tflite_failures = (
            tower_exports.tflite_variants(
                towers["float32"],
                saved["float32"].item_index(),
                out,
                wd.root,
                calibration,
                s.tower_calibration_examples,
                test_batches,
            )
        )
    else:
        # TFLite's interpreter (XNNPACK) kills the process with a segmentation fault on the
        # converted query tower of all-MiniLM-L6-v2 with its query student: no Python code can
        # catch that, so the conversion is not attempted for pretrained encoders.
        tflite_found, tflite_runners, tflite_queries = {}, {}, {}
        tflite_failures = [
            "TFLite query towers: not built for a pretrained text encoder (mode "
            f"`{config.model.text_encoder.mode}`); its SavedModel variants are above"
        ]
    found.update(tflite_found)
    runners.update(tflite_runners)
    embedded.update(tflite_queries)
    for name, runner in runners.items():
        path = wd.root / found[name]["path"]
        found[name]["size"] = sizes.size_on_disk(path)
        if found[name]["format"] == "savedmodel":
            found[name]["size"]["parts"] = sizes.savedmodel_parts(path)
        items = (
            runner.index
            if isinstance(runner, artifacts.TFLiteVariantRunner)
            else runner.item_index()
        )
        found[name]["quality"] = context.metrics(embedded[name], items)
    timed = report_lib.measure_latency(
        _latency_calls(runners, _latency_batches(prepared, s.latency_batch_size)),
        s.latency_calls,
    )
    for (name, key), stats in timed.items():
        found[name].setdefault("latency", {})[key] = stats

    ranker_note = "no trained ranker in the workdir: ranker variants skipped"
    if ranker_data.available(wd.root):
        try:
            # The float32 index is the retrieval model's item embeddings: the ranker reads them.
            items = saved["float32"].item_index()
            found.update(ranker.compress(config, wd, prepared, model, out, items))
            ranker_note = "ranker variants: AUC (mean over binary heads) on test-split examples"
        except Exception as e:  # noqa: BLE001 - the towers' report stands without the ranker
            ranker_note = f"ranker variants FAILED and are missing: {type(e).__name__}: {e}"
    baselines = {
        name: "ranker_float32" if name.startswith("ranker") else "float32" for name in found
    }
    baselines.update(
        {name: "float32_tflite" for name in tower_exports.TFLITE_VARIANTS if name in found}
    )
    baselines.update(
        {n: "ranker_float32_tflite" for n in found if n.startswith("ranker") and "tflite" in n}
    )
    report_lib.add_ratios(found, baselines)
    result = {
        "workdir": str(wd.root),
        "config": config.name,
        "precision": {
            "training": config.train.precision,
            "compression": "float32",
        },
        "settings": config_lib.to_dict(config)["compression"],
        "batch_size": s.latency_batch_size,
        "latency_calls": s.latency_calls,
        "fine_tune_steps": s.fine_tune_steps,
        "qat_steps": qat_steps,
        "test_queries": len(context.relevant),
        "catalog_items": context.num_items,
        "exclude_seen": context.exclude_seen,
        "targets_spec": report_lib.targets(s),
        "variants": found,
        "notes": _notes(config) + tflite_failures + [ranker_note],
    }
    result["targets"] = report_lib.check_targets(found, s)
    result["seconds"] = time.perf_counter() - start
    report_lib.write(result, out)
    return result


def _tower_variants(
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    model: Any,
    targets: Sequence[float],
    qat_steps: int,
    log_root: Path,
) -> dict[str, variants.Towers]:
    """`float32`, `pruned_<percent>` per target, `qat` and `<least pruned>_qat` towers."""
    steps = config.compression.fine_tune_steps
    towers = {"float32": variants.Towers(model.query_model, model.candidate_model)}
    towers["float32"].notes.append("the trained towers, restored from the best checkpoint")
    for target in targets:
        name = _variant_name(target)
        towers[name] = variants.pruned(
            config, prepared, towers["float32"], target, steps, log_dir=str(log_root / name)
        )
    towers["qat"] = variants.quantize_aware(config, prepared, towers["float32"], qat_steps)
    pruned_base = _variant_name(targets[0])
    towers[f"{pruned_base}_qat"] = variants.quantize_aware(
        config,
        prepared,
        towers[pruned_base],
        qat_steps,
        preserve_sparsity=True,
        teacher=towers["float32"],
    )
    return towers


def _latency_calls(
    runners: dict[str, artifacts.SavedModelRunner | artifacts.TFLiteVariantRunner],
    requests: dict[str, dict[str, tf.Tensor]],
) -> dict[tuple[str, str], Callable[[], Any]]:
    """(variant, request name) -> one `retrieve` call of that variant on that request."""
    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    for name, runner in runners.items():
        for key, batch in requests.items():
            if isinstance(runner, artifacts.TFLiteVariantRunner):
                size = int(next(iter(batch.values())).shape[0])
                calls[(name, key)] = functools.partial(runner.retrieve, batch, size)
            else:
                calls[(name, key)] = functools.partial(runner.retrieve, batch)
    return calls


def _notes(config: config_lib.Config) -> list[str]:
    latency_calls = config.compression.latency_calls
    batch_size = config.compression.latency_batch_size
    return [
        f"training precision `{config.train.precision}`; every variant was built, fine-tuned "
        "and measured in float32 (TF-MOT and int8 conversion need float32 layers)",
        "quality: the protocol of `tfrec evaluate` on the test split (full catalog), each "
        "variant's query embeddings (from its saved artifact) against its own item index; "
        "Recall/NDCG columns score with the towers alone (where compression shows), `served` "
        "columns with the served score, towers + the run's repeat prior (`tfrec evaluate`'s "
        "`tfrec` row)",
        f"latency: CPU, {latency_calls} interleaved calls per variant of the `retrieve` path "
        f"(query tower + full-catalog scores + top-{artifacts.RETRIEVE_K}) at batch 1 and "
        f"{batch_size}; ratios are to float32 measured in the same run",
        "SavedModel variants are compared with `float32` (same layout), TFLite variants with "
        "`float32_tflite`; QAT variants hold float32 weights with fake quantization and are "
        "not int8 artifacts",
        "pruned variants store their zeros densely: only the gzipped size shows the gain",
    ]
