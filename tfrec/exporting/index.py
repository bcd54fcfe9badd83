"""The served item index: ids, precomputed candidate-tower vectors and display metadata."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from tfrec import errors, features, inference


@dataclasses.dataclass
class ItemIndex:
    """Every item an export can return, embedded once at export time.

    Serving scores requests against `vectors` directly, so no item-tower computation happens
    per request; adding items (cold start) only needs their vectors appended.

    Args:
        item_ids: np.ndarray [n] object. Unique item ids; row i is item i.
        vectors: np.ndarray [n, dim] float32. Candidate-tower embeddings.
        titles: np.ndarray [n] object. Display titles ("" when unknown).
        categories: np.ndarray [n] object. Categories ("" when unknown), a ranking feature.
        prices: np.ndarray [n] float32. Standardized log1p(price) (0 when unknown), a ranking
            feature.
    """

    item_ids: np.ndarray
    vectors: np.ndarray
    titles: np.ndarray
    categories: np.ndarray
    prices: np.ndarray

    def __post_init__(self):
        self.item_ids = np.asarray(self.item_ids, dtype=object).astype(str).astype(object)
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.titles = np.asarray(self.titles, dtype=object).astype(str).astype(object)
        self.categories = np.asarray(self.categories, dtype=object).astype(str).astype(object)
        self.prices = np.asarray(self.prices, dtype=np.float32)
        n = len(self.item_ids)
        if n == 0:
            raise errors.DataError("`item_ids` must hold at least one item, received none")
        if self.vectors.ndim != 2 or self.vectors.shape[0] != n:
            raise errors.DataError(
                f"`vectors` must be [{n}, dim] (one row per item id), received "
                f"{list(self.vectors.shape)}"
            )
        for name in ("titles", "categories", "prices"):
            if getattr(self, name).shape != (n,):
                raise errors.DataError(
                    f"`{name}` must be [{n}] (one per item id), received "
                    f"{list(getattr(self, name).shape)}"
                )
        unique, counts = np.unique(self.item_ids.astype(str), return_counts=True)
        if (counts > 1).any():
            raise errors.DataError(
                f"`item_ids` must be unique, received {unique[counts > 1][0]!r} twice"
            )
        if (self.item_ids == "").any():
            raise errors.DataError("`item_ids` must not contain '' (it means padding)")

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def extend(self, other: ItemIndex) -> ItemIndex:
        """A new index: these items, then those of `other` (ids must not repeat)."""
        if other.dim != self.dim:
            raise errors.DataError(
                f"`vectors` of added items must have dim {self.dim}, received {other.dim}"
            )
        return ItemIndex(
            *(
                np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in dataclasses.fields(self)
            )
        )

    def replace_rows(self, other: ItemIndex) -> ItemIndex:
        """A new index: these items, each id of `other` in its row here described by `other`.

        Rows keep their positions, so the id order a server saw stays the same.
        """
        if other.dim != self.dim:
            raise errors.DataError(
                f"`vectors` of changed items must have dim {self.dim}, received {other.dim}"
            )
        row_of = {item_id: row for row, item_id in enumerate(self.item_ids)}
        missing = [i for i in other.item_ids if i not in row_of]
        if missing:
            raise errors.DataError(
                f"changed `item_ids` must be in the index, received {missing[0]!r}"
            )
        rows = np.asarray([row_of[i] for i in other.item_ids], dtype=np.int64)
        arrays = {}
        for f in dataclasses.fields(self):
            values = getattr(self, f.name).copy()
            values[rows] = getattr(other, f.name)
            arrays[f.name] = values
        return ItemIndex(**arrays)

    def without(self, item_ids) -> ItemIndex:
        """A new index without the items `item_ids` (the rest keep their order)."""
        keep = ~np.isin(self.item_ids.astype(str), np.asarray(list(item_ids), dtype=str))
        return ItemIndex(**{f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)})

    def save(self, directory: os.PathLike | str) -> None:
        """Writes `index.npz` (vectors, prices) and `items.json` (ids, titles, categories)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "index.npz", vectors=self.vectors, prices=self.prices)
        meta = {
            "item_ids": self.item_ids.tolist(),
            "titles": self.titles.tolist(),
            "categories": self.categories.tolist(),
        }
        (directory / "items.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: os.PathLike | str) -> ItemIndex:
        directory = Path(directory)
        if not (directory / "index.npz").is_file():
            raise errors.WorkdirError(f"no item index at `{directory / 'index.npz'}`")
        arrays = np.load(directory / "index.npz")
        meta = json.loads((directory / "items.json").read_text(encoding="utf-8"))
        return cls(
            item_ids=np.asarray(meta["item_ids"], dtype=object),
            vectors=arrays["vectors"],
            titles=np.asarray(meta["titles"], dtype=object),
            categories=np.asarray(meta["categories"], dtype=object),
            prices=arrays["prices"],
        )


def from_table(candidate_model, table) -> ItemIndex:
    """Embeds every row of an `ItemTable` (e.g. `PreparedData.table`) with the item tower."""
    return ItemIndex(
        item_ids=table.item_ids,
        vectors=inference.item_embeddings(candidate_model, table),
        titles=table.titles,
        categories=table[features.ITEM_CATEGORY],
        prices=table[features.ITEM_PRICE],
    )
