"""Compressed variants of the trained DCN ranker: pruned, QAT, int8 and TFLite, measured by AUC.

The parts: `ranker_data` (its examples and AUC), `ranker_variants` (pruned and QAT copies),
`ranker_tflite` (flatbuffers). This module exports them, measures them like the towers' and
returns their report entries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec.compression import int8_savedmodel, ranker_data, ranker_tflite, ranker_variants, sizes
from tfrec.compression import report as report_lib
from tfrec.data import prepared as prepared_lib

if TYPE_CHECKING:  # imported where used: the ranking package is optional
    from pathlib import Path

    from tfrec.models import retrieval
    from tfrec.training import workdir as workdir_lib


def compress(
    config: config_lib.Config,
    wd: workdir_lib.Workdir,
    prepared: prepared_lib.PreparedData,
    retrieval_model: retrieval.RetrievalModel,
    out: Path,
    item_vectors: Optional[np.ndarray] = None,
) -> dict[str, dict[str, Any]]:
    """Ranker variants measured like the towers; returns name -> variant dict (`ranker_*`).

    What is made and how it is measured is `config.compression` (sparsities, fine-tuning
    steps, latency calls and batch size, calibration size, int8 targets).

    Args:
        config: Config. The run config, with the compression settings of this run.
        wd: Workdir. The run holding the trained ranker.
        prepared: PreparedData. The run's data.
        retrieval_model: RetrievalModel. The trained retrieval model feeding the ranker.
        out: Path. The compression directory variants are written to.
        item_vectors: np.ndarray or None. The retrieval model's item embeddings, when the
            caller has them. Defaults to None: computed here.

    Returns:
        Variant name -> variant dict, as `compress_workdir` reports them.
    """
    from tfrec.ranking import training

    settings = config.compression
    steps = settings.fine_tune_steps
    qat_steps = steps if settings.qat_steps is None else settings.qat_steps
    ranker = training.load_ranker(config, wd.root, prepared, retrieval_model)
    heads = ranker.heads
    train, test = ranker_data.datasets(
        config, wd.root, prepared, retrieval_model, heads, item_vectors
    )
    networks, notes, sparsity = ranker_variants.build(
        ranker.network,
        heads,
        ranker.loss_weights,
        train,
        sorted(set(settings.sparsities)),
        steps,
        qat_steps,
        config.ranking.learning_rate,
        wd.tb / "compression",
    )
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
        found[name]["quality"] = ranker_data.auc(ranker_data.by_keywords(fn), test, heads)
    runners.update(
        ranker_tflite.tflite_variants(ranker.network, train, out, wd, found, test, heads, settings)
    )
    batch = settings.latency_batch_size
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
        settings.latency_calls,
    )
    for (name, key), stats in timed.items():
        found[name].setdefault("latency", {})[key] = stats
    for name in found:
        found[name]["size"] = sizes.size_on_disk(wd.root / found[name]["path"])
        if found[name]["format"] == "savedmodel":
            found[name]["size"]["parts"] = sizes.savedmodel_parts(wd.root / found[name]["path"])
    return found
