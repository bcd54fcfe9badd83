"""Offline ranker metrics: per-head AUC and log loss, and NDCG@k of re-ranked candidate lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrec.ranking import examples


def auc(labels, scores) -> float:
    """Exact ROC AUC: the probability a random positive outscores a random negative (ties 1/2).

    Args:
        labels: array [n] of 0/1 (values > 0.5 count as positive).
        scores: array [n] of scores or logits (any monotone transform gives the same AUC).

    Returns:
        float in [0, 1], or NaN when `labels` holds only one class.

    Example:
        >>> auc([1, 0, 1, 0], [0.9, 0.1, 0.4, 0.4])  # pairs won: 1 + 1 + 1 + 0.5 of 4
        0.875
    """
    labels = np.asarray(labels, np.float64).ravel() > 0.5
    scores = np.asarray(scores, np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(
            f"`labels` and `scores` must match, received {labels.shape} and {scores.shape}"
        )
    num_pos, num_neg = int(labels.sum()), int((~labels).sum())
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    # Mann-Whitney U from average ranks, so tied scores share their rank.
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = start + (counts + 1) / 2.0  # 1-based average rank of each tie block
    ranks[order] = np.repeat(average, counts)
    u = ranks[labels].sum() - num_pos * (num_pos + 1) / 2.0
    return float(u / (num_pos * num_neg))


def log_loss(labels, logits) -> float:
    """Mean binary cross-entropy of `labels` [n] given `logits` [n], computed stably."""
    y = np.asarray(labels, np.float64).ravel()
    z = np.asarray(logits, np.float64).ravel()
    if y.shape != z.shape:
        raise ValueError(f"`labels` and `logits` must match, received {y.shape} and {z.shape}")
    # -[y log s(z) + (1 - y) log(1 - s(z))] = softplus(z) - y z
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def head_metrics(labels, outputs, heads: Sequence[str]) -> dict:
    """Per-head metrics of held-out examples.

    Args:
        labels: array [n, num_heads]. Columns in the order of `heads`.
        outputs: array [n, num_heads]. Logits (binary heads) or predictions (rating heads).
        heads: list of str.

    Returns:
        dict head -> {"auc", "log_loss"} for binary heads, {"rmse"} for regression heads.
    """
    labels, outputs = np.asarray(labels), np.asarray(outputs)
    if labels.shape != outputs.shape or labels.ndim != 2 or labels.shape[1] != len(heads):
        raise ValueError(
            f"`labels` and `outputs` must both be [n, {len(heads)}] for heads {tuple(heads)}, "
            f"received {labels.shape} and {outputs.shape}"
        )
    result = {}
    for j, head in enumerate(heads):
        if head in examples.REGRESSION_HEADS:
            result[head] = {"rmse": float(np.sqrt(np.mean((labels[:, j] - outputs[:, j]) ** 2)))}
        else:
            result[head] = {
                "auc": auc(labels[:, j], outputs[:, j]),
                "log_loss": log_loss(labels[:, j], outputs[:, j]),
            }
    return result


def evaluate_heads(network, dataset, heads: Sequence[str]) -> dict:
    """Runs `network` over a (features, labels) dataset and returns `head_metrics`."""
    label_parts, output_parts = [], []
    for features, labels in dataset:
        outputs = network(features, training=False)
        label_parts.append(np.concatenate([np.reshape(labels[h], [-1, 1]) for h in heads], 1))
        output_parts.append(np.concatenate([np.reshape(outputs[h], [-1, 1]) for h in heads], 1))
    return head_metrics(np.concatenate(label_parts), np.concatenate(output_parts), heads)


def reranked_ndcg_at_k(candidates, scores, relevant: Sequence, k: int = 10) -> np.ndarray:
    """Per-query NDCG@k of candidate lists re-ordered by ranker score, with binary gains.

    The ideal DCG puts min(k, |relevant|) hits on top, counting relevant items the retrieval
    stage missed: re-ranking cannot recover them, and the metric should show that.

    Args:
        candidates: array [num_queries, N]. Retrieved item ids (or indices) per query.
        scores: array [num_queries, N]. Ranker scores; ties keep the retrieval order.
        relevant: list of arrays, one per query. Relevant item ids, at least one per query.
        k: int. The cut-off. Defaults to 10.

    Returns:
        float64 array [num_queries] in [0, 1].

    Example:
        >>> reranked_ndcg_at_k([["a", "b"]], [[0.1, 0.9]], [["a"]], k=10)  # "a" at rank 2
        array([0.63092975])
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be a positive int, received {k!r}")
    candidates, scores = np.asarray(candidates), np.asarray(scores, np.float64)
    if candidates.ndim != 2 or candidates.shape != scores.shape:
        raise ValueError(
            f"`candidates` and `scores` must both be [num_queries, N], "
            f"received {candidates.shape} and {scores.shape}"
        )
    if len(relevant) != len(candidates):
        raise ValueError(
            f"`relevant` must hold one list per query ({len(candidates)}), received {len(relevant)}"
        )
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    result = np.zeros(len(candidates))
    for q, rel in enumerate(relevant):
        rel = set(np.asarray(rel).ravel().tolist())
        if not rel:
            raise ValueError(f"`relevant[{q}]` must hold at least one item, received none")
        top = candidates[q][np.argsort(-scores[q], kind="stable")[:k]]
        seen: set = set()
        gains = np.zeros(len(top))
        for r, item in enumerate(top.tolist()):
            # A duplicated candidate earns its gain once.
            gains[r] = float(item in rel and item not in seen)
            seen.add(item)
        result[q] = (gains * discounts[: len(top)]).sum() / discounts[: min(k, len(rel))].sum()
    return result
