"""Pruned and QAT copies of the trained DCN ranker, fine-tuned by distillation from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfrec.compression import distill, pruning, qat, variants


def _prunable(layer: tf.keras.layers.Layer) -> bool:
    # A frozen layer (the item-vector table copied from the retrieval tower) is not the ranker's
    # to prune: zeroing it would change the items' meaning with no fine-tuning to compensate.
    # DCN's `Cross(x0, x)` takes two inputs; `graph.rebuild` passes the second by name.
    return layer.trainable


def fine_tune(
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


def build(
    network: tf.keras.Model,
    heads: Sequence[str],
    loss_weights: Mapping[str, float],
    train: tf.data.Dataset,
    targets: Sequence[float],
    steps: int,
    qat_steps: int,
    rate: float,
    log_root: Path,
) -> tuple[dict[str, tf.keras.Model], dict[str, list[str]], dict[str, dict[str, Any]]]:
    """The float32 ranker, one pruned copy per target and a QAT copy, each fine-tuned.

    Args:
        network: tf.keras.Model. The trained ranking network (left untouched).
        heads: sequence of str. Its heads.
        loss_weights: mapping. Head -> distillation loss weight (default 1).
        train: tf.data.Dataset. Repeated training batches.
        targets: sequence of float. Pruning targets in (0, 1).
        steps: int. Fine-tuning steps of each pruned copy.
        qat_steps: int. Fine-tuning steps of the QAT copy.
        rate: float. Adam learning rate.
        log_root: Path. TensorBoard folder; pruning summaries go to `<log_root>/<name>`.

    Returns:
        (name -> network, name -> notes, name -> sparsity summary of each pruned copy), names
        `ranker_float32`, `ranker_pruned_<percent>` and `ranker_qat`.
    """
    networks = {"ranker_float32": network}
    notes: dict[str, list[str]] = {
        "ranker_float32": ["the trained ranking network (best checkpoint)"]
    }
    sparsity: dict[str, dict[str, Any]] = {}
    end_step, frequency = variants.schedule(steps)
    for target in targets:
        name = f"ranker_pruned_{round(target * 100):d}"
        pruned = pruning.prune(
            network, target, end_step=end_step, frequency=frequency, layer_filter=_prunable
        )
        callbacks = pruning.callbacks(str(log_root / name))
        fine_tune(pruned, network, heads, loss_weights, train, steps, rate, callbacks)
        networks[name] = pruning.strip(pruned)
        sparsity[name] = _sparsity(networks[name], pruning.pruned_weight_names(pruned), target)
        notes[name] = [
            f"fine-tuned {steps} steps by distillation from the float32 ranker (labels unused); "
            "every trainable kernel and table pruned, DCN cross "
            "layers included; the frozen item-vector table (a copy of the retrieval item "
            "embeddings) stays dense"
        ]
    networks["ranker_qat"] = qat.quantize_aware(network)
    fine_tune(networks["ranker_qat"], network, heads, loss_weights, train, qat_steps, rate)
    notes["ranker_qat"] = [
        f"fake-quant QAT, {qat_steps} steps of distillation from the float32 ranker: float32 "
        "weights (simulated int8)"
    ]
    return networks, notes, sparsity


def _sparsity(stripped: tf.keras.Model, names: Sequence[str], target: float) -> dict[str, Any]:
    """A pruned copy's zeros: overall, over its pruned weights, per weight, dense matrices."""
    measured = pruning.measure_sparsity(stripped)
    zeros, total = pruning.zero_counts(stripped)
    pruned_zeros, pruned_total = pruning.zero_counts(stripped, names)
    return {
        "overall": zeros / total,
        "pruned_weights": pruned_zeros / pruned_total,
        "target": target,
        "per_weight": {n: measured[n] for n in names},
        "unpruned": [
            n
            for n, w in pruning.named_weights(stripped).items()
            if n not in names and n.endswith(("kernel", "embeddings")) and w.shape.rank >= 2
        ],
    }
