"""Compressed variants of trained retrieval towers: pruned, QAT and pruned-QAT, fine-tuned on the loss."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Optional

import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors, features
from tfrec.compression import distill, pruning, qat
from tfrec.data import pipeline
from tfrec.data import prepared as prepared_lib

# Distillation pulls the copy towards the trained towers, so it can fine-tune at the run's own
# rate: on UCI, 200 steps at the full rate kept 50%-pruned towers within 1% of float32, where
# a tenth of it left NDCG@10 2% down.
_LEARNING_RATE_SCALE = 1.0


@dataclasses.dataclass
class Towers:
    """A query tower and a candidate tower (Functional, float32), plus how they were made.

    Args:
        query: tf.keras.Model. Query features -> `[batch, dim]`.
        candidate: tf.keras.Model. Candidate features -> `[batch, dim]`.
        sparsity: dict. Pruned weight name (`query/...`, `candidate/...`) -> measured share of
            zeros; empty when nothing was pruned.
        unpruned: list of str. Matrix weights left dense on purpose (position embeddings, see
            `pruning.prunable_weights`).
        fine_tune_steps: int. Optimizer steps of fine-tuning. Defaults to 0.
        notes: list of str. What the report should say about this variant.
        target: float or None. The pruning target the variant was made for (or comes from).
    """

    query: tf.keras.Model
    candidate: tf.keras.Model
    sparsity: dict[str, float] = dataclasses.field(default_factory=dict)
    unpruned: list[str] = dataclasses.field(default_factory=list)
    fine_tune_steps: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)
    target: Optional[float] = None


def check_sparsity(target: Any) -> float:
    """The target as a float, or a ConfigError naming `sparsity` before any work starts.

    Args:
        target: float, or anything `float()` reads (as given on the command line).

    Returns:
        float in (0, 1).
    """
    try:
        value = float(target)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise errors.ConfigError(
            f"`sparsity` must be a share of zeroed weights in (0, 1), e.g. 0.5 or 0.8, "
            f"received {target!r}"
        )
    return value


def check_steps(steps: Any) -> int:
    """Fine-tuning steps as an int >= 2 (a pruning schedule needs a step after its end).

    Args:
        steps: int. Anything else is a ConfigError naming `fine_tune_steps`.

    Returns:
        `steps`.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise errors.ConfigError(f"`fine_tune_steps` must be an int >= 2, received {steps!r}")
    return steps


def schedule(steps: int) -> tuple[int, int]:
    """(end_step, frequency) reaching the target at ~80% of `steps`, masks updated ~10 times.

    The last steps train at the final sparsity so the network adapts to the final mask.
    """
    frequency = max(1, steps // 10)
    end_step = frequency * max(1, (steps * 8 // 10) // frequency)
    return end_step, frequency


def training_dataset(
    config: config_lib.Config, prepared: prepared_lib.PreparedData, seed_offset: int = 1
) -> tf.data.Dataset:
    """The training pipeline of `tfrec train` (repeated), reshuffled with another seed."""
    tc = config.train
    return pipeline.retrieval_dataset(
        prepared.train,
        prepared.table,
        prepared.spec,
        tc.batch_size,
        shuffle=True,
        seed=tc.seed + seed_offset,
        query_text_rate=config.data.query_text_rate,
        repeat=True,
        drop_remainder=True,
    )


def fine_tune(
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    query: tf.keras.Model,
    candidate: tf.keras.Model,
    teacher: Towers,
    steps: int,
    callbacks: Optional[list[tf.keras.callbacks.Callback]] = None,
) -> float:
    """Trains `query` and `candidate` in place for `steps` steps to score like `teacher`.

    The loss is `distill.DistilledTowers`'s (in-batch KL to the teacher's scores), not the
    training loss: see `tfrec.compression.distill` for why.

    Returns:
        The loss of the last step.
    """
    model = distill.DistilledTowers(
        query, candidate, teacher.query, teacher.candidate, config.model.temperature
    )
    rate = config.train.learning_rate * _LEARNING_RATE_SCALE
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=rate))
    history = model.fit(
        training_dataset(config, prepared),
        epochs=1,
        steps_per_epoch=steps,
        callbacks=callbacks or [],
        verbose=0,
    )
    return float(history.history["loss"][-1])


def pruned(
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    towers: Towers,
    target: float,
    steps: int,
    log_dir: Optional[str] = None,
) -> Towers:
    """Both towers magnitude-pruned to `target`, fine-tuned `steps` steps, then stripped.

    Args:
        config: Config. The run's config (loss and pipeline settings).
        prepared: PreparedData.
        towers: Towers. The float32 trained towers (left untouched).
        target: float. Final sparsity of every pruned kernel and table, in (0, 1).
        steps: int. Fine-tuning steps (>= 2); the polynomial schedule ends at ~80% of them.
        log_dir: str or None. TensorBoard directory for `PruningSummaries`.

    Returns:
        Towers without pruning wrappers, with `sparsity` measured on the stripped weights.
    """
    target, steps = check_sparsity(target), check_steps(steps)
    end_step, frequency = schedule(steps)
    query = pruning.prune(towers.query, target, end_step=end_step, frequency=frequency)
    candidate = pruning.prune(towers.candidate, target, end_step=end_step, frequency=frequency)
    names = {"query": pruning.pruned_weight_names(query)}
    names["candidate"] = pruning.pruned_weight_names(candidate)
    fine_tune(config, prepared, query, candidate, towers, steps, pruning.callbacks(log_dir))
    stripped = {"query": pruning.strip(query), "candidate": pruning.strip(candidate)}
    sparsity: dict[str, float] = {}
    unpruned: list[str] = []
    for side, model in stripped.items():
        measured = pruning.measure_sparsity(model)
        weights = pruning.named_weights(model)
        for name, value in measured.items():
            if name in names[side]:
                sparsity[f"{side}/{name}"] = value
            elif name.endswith(("kernel", "embeddings")) and weights[name].shape.rank >= 2:
                unpruned.append(f"{side}/{name}")
    return Towers(
        stripped["query"],
        stripped["candidate"],
        sparsity=sparsity,
        unpruned=unpruned,
        fine_tune_steps=steps,
        notes=[
            f"polynomial decay 0 -> {target} over steps 0..{end_step} (masks every "
            f"{frequency} steps), fine-tuned {steps} steps by distillation from the float32 "
            "towers (in-batch KL, `compression.distill`); the shared text encoder is pruned "
            "separately in each tower"
        ],
        target=target,
    )


def quantize_aware(
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    towers: Towers,
    steps: int,
    preserve_sparsity: bool = False,
    teacher: Optional[Towers] = None,
) -> Towers:
    """Both towers with 8-bit fake quantization (TF-MOT QAT), fine-tuned `steps` steps.

    The result still computes in float32 with float32 weights: it simulates int8 and is never
    an int8 artifact itself.

    Args:
        config: Config. The run's config.
        prepared: PreparedData.
        towers: Towers. Float32 (or pruned and stripped) towers, left untouched.
        steps: int. Fine-tuning steps (>= 1).
        preserve_sparsity: bool. Pruning-preserving QAT (keeps a pruned model's zeros).
        teacher: Towers or None. What the fine-tune distills from. Defaults to `towers`; a
            pruned variant's QAT passes the float32 towers.

    Returns:
        Towers of QAT models (`QuantizeWrapperV2` layers).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise errors.ConfigError(f"`fine_tune_steps` must be an int >= 1, received {steps!r}")
    query = qat.quantize_aware(towers.query, preserve_sparsity=preserve_sparsity)
    candidate = qat.quantize_aware(towers.candidate, preserve_sparsity=preserve_sparsity)
    fine_tune(config, prepared, query, candidate, teacher or towers, steps)
    sparsity: dict[str, float] = {}
    notes = [
        f"fake-quant 8-bit QAT fine-tuned {steps} steps by distillation (in-batch KL to the "
        "unquantized float32 towers' scores); weights stay float32 (simulated int8)"
    ]
    if preserve_sparsity:
        # QAT flattens nested models, so names differ from the pruned towers': report every
        # kernel and table as measured after the QAT fine-tune.
        for side, model in (("query", query), ("candidate", candidate)):
            for name, value in pruning.measure_sparsity(model).items():
                if name.endswith(("kernel", "embeddings")):
                    sparsity[f"{side}/{name}"] = value
        notes.append(
            "pruning-preserving QAT (TF-MOT Default8BitPrunePreserveQuantizeScheme): zeros are "
            "kept in the layers QAT wraps (Dense, Embedding); layers it leaves in float (BERT "
            "TransformerEncoder, attention) fine-tune freely and may lose theirs"
        )
    target = towers.target if preserve_sparsity else None
    return Towers(query, candidate, sparsity, list(towers.unpruned), steps, notes, target)


def sparsity_summary(towers: Towers) -> dict[str, Any]:
    """What a report says about a variant's zeros: whole towers, pruned weights, per weight.

    Returns:
        `overall`: share of exact zeros over every weight of both towers (biases, norms and
        dense-on-purpose tables included); `pruned_weights`: over the pruned weights only;
        `per_weight`, `unpruned` and `target` as in `Towers`.
    """
    zeros = total = pruned_zeros = pruned_total = 0
    for side, model in (("query", towers.query), ("candidate", towers.candidate)):
        z, t = pruning.zero_counts(model)
        zeros, total = zeros + z, total + t
        prefix = f"{side}/"
        names = [n[len(prefix) :] for n in towers.sparsity if n.startswith(prefix)]
        z, t = pruning.zero_counts(model, names)
        pruned_zeros, pruned_total = pruned_zeros + z, pruned_total + t
    return {
        "overall": zeros / total if total else None,
        "pruned_weights": pruned_zeros / pruned_total if pruned_total else None,
        "per_weight": dict(towers.sparsity),
        "unpruned": list(towers.unpruned),
        "target": towers.target,
    }


def query_features(batch: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The query-tower inputs of a training batch."""
    return {name: batch[name] for name in features.QUERY_FEATURES}
