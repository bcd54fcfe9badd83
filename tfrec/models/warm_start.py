"""Warm start: copies a trained model's weights into the same model built over grown vocabularies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import tensorflow as tf

# Id tables an update may grow, by layer name, with the row a new id starts from: the OOV row,
# which the towers trained for ids they do not know (item-id dropout teaches the item tower to
# answer from text, category and price there), so a new item's embedding starts exactly where
# it stood as an unknown id. Layouts: StringLookup without a mask puts OOV at 0 and entries
# from 1; the history lookup masks "" at 0, OOV at 1, entries from 2. The names are the
# towers' (tfrec.models) and the ranker's (tfrec.ranking.network) own.
OOV_ROWS: Mapping[str, int] = {
    "user_embedding": 0,
    "item_embedding": 0,
    "category_embedding": 0,
    "history_item_embedding": 1,
}
# Per-item caches of a pretrained text encoder: a new row starts empty (not cached), so the
# encoder computes the item's text live until the cache is filled.
ZERO_ROWS = ("item_cache", "item_cached")
# Tables rebuilt from the warm-started towers rather than copied (the ranker's frozen
# catalog vectors).
RECOMPUTED = ("item_vectors",)


def _layer(variable: tf.Variable) -> str:
    """The layer part of a variable name: "item_embedding" of "item_embedding/embeddings:0"."""
    parts = variable.name.split("/")
    return parts[-2] if len(parts) > 1 else parts[0].split(":")[0]


def _leaf(variable: tf.Variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _grown(old: np.ndarray, shape: tuple, start_row: int | None) -> np.ndarray:
    """`old` with rows appended up to `shape[0]`: copies of row `start_row`, or zeros."""
    extra = shape[0] - old.shape[0]
    if start_row is None:
        fill = np.zeros((extra, *old.shape[1:]), dtype=old.dtype)
    else:
        fill = np.repeat(old[start_row : start_row + 1], extra, axis=0)
    return np.concatenate([old, fill], axis=0)


def copy_weights(
    source: Iterable[tf.Variable], target: Iterable[tf.Variable]
) -> dict[str, tuple[int, int]]:
    """Copies every weight of a trained model into a model built the same way, row by row.

    Weights pair up in creation order, which the builders fix. Equal shapes are copied as
    they are; an id table (`OOV_ROWS`, `ZERO_ROWS`) that grew keeps its old rows at their
    positions and its new rows start from the OOV row (or zeros); `RECOMPUTED` tables are
    left as built.

    Args:
        source: the trained model's weights (e.g. `tower.weights`).
        target: the new model's weights, same architecture, vocabularies grown.

    Returns:
        dict: layer name -> (old rows, new rows) of each table that grew.

    Raises:
        ValueError: the two models differ in anything but grown id tables (another
            architecture, or a table that shrank).
    """
    source, target = list(source), list(target)
    if len(source) != len(target):
        raise ValueError(
            f"warm start needs the same architecture: expected {len(source)} weights, "
            f"received a model with {len(target)}"
        )
    grown: dict[str, tuple[int, int]] = {}
    for old, new in zip(source, target, strict=True):
        layer = _layer(new)
        if _leaf(old) != _leaf(new):
            raise ValueError(
                f"warm start needs the same architecture: weight `{old.name}` pairs with "
                f"`{new.name}`"
            )
        if layer in RECOMPUTED:
            continue
        value = old.numpy()
        shape = tuple(new.shape)
        if tuple(old.shape) != shape:
            growable = layer in OOV_ROWS or layer in ZERO_ROWS or _leaf(new) in ZERO_ROWS
            if not growable or shape[1:] != value.shape[1:] or shape[0] < value.shape[0]:
                raise ValueError(
                    f"warm start can only append rows to an id table: `{old.name}` has shape "
                    f"{tuple(old.shape)}, the new model's `{new.name}` {shape}"
                )
            value = _grown(value, shape, OOV_ROWS.get(layer))
            grown[layer] = (int(old.shape[0]), int(shape[0]))
        new.assign(value)
    return grown
