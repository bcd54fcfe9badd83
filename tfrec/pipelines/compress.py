"""`tfrec compress`: pruned, QAT and int8 variants of a trained run, measured in one report."""

from __future__ import annotations

import functools
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
from tfrec import errors, inference, precision
from tfrec.compression import artifacts, ranker, sizes, tflite_ops, variants
from tfrec.compression import report as report_lib
from tfrec.data import pipeline
from tfrec.data import prepared as prepared_lib
from tfrec.models import repeat_prior
from tfrec.training import trainer

DEFAULT_SPARSITIES = (0.5, 0.8)
# Distillation steps per pruned / QAT variant: on UCI, 400 kept 50%-pruned towers within 1% of
# float32 on both scores (200 left the towers' own NDCG@10 1.2% down in one run, 100 2%).
DEFAULT_FINE_TUNE_STEPS = 400
# TFLite variants of the query tower and their conversion mode (`tflite.MODES`).
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
    "full_int8": "full-integer: activations calibrated on 200 training examples and computed "
    "in int8 except `tflite.DEFAULT_FLOAT_OPS` (BROADCAST_TO: its int8 kernel garbles the "
    "position embeddings; DIV: its int8 kernel fails on the zero count of an empty sequence); "
    "reported, not chosen: int8 attention, LayerNorm and pooling activations cost quality",
}


def check_inputs(
    workdir: os.PathLike | str,
    sparsities: Sequence[float],
    fine_tune_steps: int,
    qat_steps: Optional[int] = None,
) -> tuple[artifact_lib.Artifact, config_lib.Config, list[float]]:
    """Validates everything cheap before any work: workdir, trained weights, targets, steps.

    Args:
        workdir: str or path-like. A model artifact, or a trained run holding one.
        sparsities: sequence of float. Pruning targets in (0, 1).
        fine_tune_steps: int. Fine-tuning steps of each pruned variant (>= 2).
        qat_steps: int or None. Fine-tuning steps of the QAT variants (>= 1).

    Returns:
        (Artifact, Config, sorted distinct sparsities).
    """
    if not sparsities:
        raise errors.ConfigError("`sparsity` must list at least one target, received none")
    targets = sorted({variants.check_sparsity(s) for s in sparsities})
    variants.check_steps(fine_tune_steps)
    if qat_steps is not None and (
        isinstance(qat_steps, bool) or not isinstance(qat_steps, int) or qat_steps < 1
    ):
        raise errors.ConfigError(f"`qat_steps` must be an int >= 1, received {qat_steps!r}")
    art = artifact_lib.Artifact(workdir)
    return art, art.config, targets


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
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    fine_tune_steps: int = DEFAULT_FINE_TUNE_STEPS,
    qat_steps: int | None = None,
    latency_calls: int = 100,
    batch_size: int = 64,
    prepared: Optional[prepared_lib.PreparedData] = None,
) -> dict[str, Any]:
    """Builds every variant of `workdir`'s trained towers, exports, measures and reports them.

    Writes `compression/` into the model artifact: one SavedModel version per variant
    (`<name>/1`, loadable by `tfrec serve` and TF Serving), TFLite query towers with their item
    index, `report.json` and `report.md`; pruning summaries go to its `tb/compression`.

    Args:
        workdir: str or path-like. A model artifact, or a trained run holding one (`tfrec train`).
        sparsities: sequence of float. Pruning targets in (0, 1). Defaults to (0.5, 0.8).
        fine_tune_steps: int. Fine-tuning steps of each pruned variant (>= 2). Defaults to 400.
        qat_steps: int or None. Fine-tuning steps of the QAT variants. Defaults to
            `fine_tune_steps`.
        latency_calls: int. Timed calls per variant and batch size. Defaults to 100.
        batch_size: int. Size of the batched-latency request. Defaults to 64.
        prepared: PreparedData or None. Reused when given.

    Returns:
        The report dict (also written as JSON and Markdown).
    """
    art, config, targets = check_inputs(workdir, sparsities, fine_tune_steps, qat_steps)
    wd = art.workdir
    qat_steps = fine_tune_steps if qat_steps is None else qat_steps
    start = time.perf_counter()
    out = wd.root / "compression"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # TF-MOT wrappers and int8 conversion need float32 layers, whatever the run trained in.
    precision.set_policy("float32")
    prepared = prepared or art.prepared()
    model = trainer.load_trained(config, wd.root, prepared)
    towers = {"float32": variants.Towers(model.query_model, model.candidate_model)}
    towers["float32"].notes.append("the trained towers, restored from the best checkpoint")
    for target in targets:
        towers[_variant_name(target)] = variants.pruned(
            config,
            prepared,
            towers["float32"],
            target,
            fine_tune_steps,
            log_dir=str(wd.tb / "compression" / _variant_name(target)),
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

    table = prepared.table
    prior = repeat_prior.RepeatPrior.load(wd.repeat_prior) if wd.repeat_prior.is_file() else None
    context = report_lib.EvalContext(prepared, config.eval.exclude_seen, prior)
    test_ds = pipeline.query_dataset(prepared.test, prepared.spec, 1024)
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
            "path": str(Path(path).relative_to(wd.root)),
            "weights": weights + (" + int8 index" if int8_index else ""),
            "sparsity": variants.sparsity_summary(tw)
            if not is_qat or tw.sparsity
            else {"overall": None, "per_weight": {}, "unpruned": []},
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
    int8_tensors = saved["int8_savedmodel"].int8_tensors()
    found["int8_savedmodel"] = {
        "format": "savedmodel",
        "path": str(Path(int8_path).relative_to(wd.root)),
        "weights": "int8 + float16 scales",
        "sparsity": {"overall": None, "per_weight": {}, "unpruned": []},
        "int8_tensors": int8_tensors,
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
        "path": str(Path(path).relative_to(wd.root)),
        "weights": f"int8 ({found[pruned_base]['sparsity']['target']:.0%} zeros) + scales",
        # Zeros of the float32 weights it was stored from (int8 keeps them; the per-weight
        # check is `pruned_base`'s).
        "sparsity": {
            **found[pruned_base]["sparsity"],
            "per_weight": {},
            "unpruned": [],
        },
        "int8_tensors": saved[combined].int8_tensors(),
        "notes": [
            f"`{pruned_base}` stored as `int8_savedmodel` stores float32: pruned and int8 "
            "(its zeros stay exact zeros); the smallest artifact once gzipped"
        ],
    }

    calibration = (
        variants.training_dataset(config, prepared)
        .map(variants.query_features)
        .take(max(1, 200 // config.train.batch_size + 1))
    )
    runners: dict[str, artifacts.SavedModelRunner | artifacts.TFLiteVariantRunner] = dict(saved)
    _, feed = artifacts.tflite_ready(towers["float32"].query)
    tflite_failures: list[str] = []
    for name, mode in TFLITE_VARIANTS.items():
        directory, achieved = artifacts.save_tflite(
            towers["float32"].query, float_items, out / name, calibration, mode
        )
        tflite_runner = artifacts.TFLiteVariantRunner(directory, feed)
        try:
            tflite_runner.embed(next(iter(test_ds)))
        except RuntimeError as e:
            if mode == "float":
                raise
            # An int8 kernel refusing its input: report the variant as failed, measure the rest.
            tflite_failures.append(f"`{name}` (mode `{mode}`) fails at inference: {e}")
            continue
        runners[name] = tflite_runner
        index = "float32 index" if mode == "float" else "int8 index"
        found[name] = {
            "format": "tflite",
            "path": str(Path(directory).relative_to(wd.root)),
            "weights": f"TFLite {achieved} + {index}",
            "tflite_mode": achieved,
            "sparsity": {"overall": None, "per_weight": {}, "unpruned": []},
            "notes": [
                f"TFLite query tower converted in mode `{mode}`, achieved `{achieved}` (read "
                "from its op dtypes); vocabulary lookups run beside the flatbuffer, which takes "
                "integer ids",
                _TFLITE_NOTES[mode],
            ],
        }
        float_ops = tflite_ops.float_compute_ops(tflite_runner.blob)
        if mode == "full_int8" and float_ops:
            found[name]["notes"].append(f"ops computing in float: {', '.join(float_ops)}")

    for name, runner in runners.items():
        path = wd.root / found[name]["path"]
        found[name]["size"] = sizes.size_on_disk(path)
        if found[name]["format"] == "savedmodel":
            found[name]["size"]["parts"] = sizes.savedmodel_parts(path)
        queries = np.concatenate([runner.embed(batch) for batch in test_ds])
        items = (
            runner.index
            if isinstance(runner, artifacts.TFLiteVariantRunner)
            else runner.item_index()
        )
        found[name]["quality"] = context.metrics(queries, items)

    requests = _latency_batches(prepared, batch_size)
    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    for name, runner in runners.items():
        for key, batch in requests.items():
            if isinstance(runner, artifacts.TFLiteVariantRunner):
                size = int(next(iter(batch.values())).shape[0])
                calls[(name, key)] = functools.partial(runner.retrieve, batch, size)
            else:
                calls[(name, key)] = functools.partial(runner.retrieve, batch)
    timed = report_lib.measure_latency(calls, latency_calls)
    for (name, key), stats in timed.items():
        found[name].setdefault("latency", {})[key] = stats

    ranker_note = "no trained ranker in the workdir: ranker variants skipped"
    if ranker.available(wd.root):
        try:
            found.update(
                ranker.compress(
                    config,
                    wd,
                    prepared,
                    model,
                    targets,
                    fine_tune_steps,
                    qat_steps,
                    out,
                    latency_calls,
                    batch_size,
                )
            )
            ranker_note = "ranker variants: AUC (mean over binary heads) on test-split examples"
        except Exception as e:  # noqa: BLE001 - the towers' report stands without the ranker
            ranker_note = f"ranker variants FAILED and are missing: {type(e).__name__}: {e}"
    baselines = {
        name: "ranker_float32" if name.startswith("ranker") else "float32" for name in found
    }
    baselines.update({name: "float32_tflite" for name in TFLITE_VARIANTS if name in found})
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
        "batch_size": batch_size,
        "latency_calls": latency_calls,
        "fine_tune_steps": fine_tune_steps,
        "qat_steps": qat_steps,
        "test_queries": len(context.relevant),
        "catalog_items": context.num_items,
        "exclude_seen": context.exclude_seen,
        "targets_spec": report_lib.TARGETS,
        "variants": found,
        "notes": _notes(config, latency_calls, batch_size) + tflite_failures + [ranker_note],
    }
    result["targets"] = report_lib.check_targets(found)
    result["seconds"] = time.perf_counter() - start
    report_lib.write(result, out)
    return result


def _notes(config: config_lib.Config, latency_calls: int, batch_size: int) -> list[str]:
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
