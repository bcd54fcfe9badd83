"""Dispatch from DataConfig to the loader of each dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import cleaning, schema

DATASETS = ("synthetic", "online-retail", "movielens", "amazon-reviews", "csv")


def load(data: config_lib.DataConfig) -> schema.Dataset:
    """Loads the dataset `data.dataset` from `data.path` into the canonical schema.

    `synthetic` ignores `data.path` and generates from `data.synthetic`. For `csv`, `data.path`
    is the folder that relative names in `data.csv` resolve against, or the interactions file
    itself (relative names then resolve against its folder).

    Args:
        data: DataConfig.

    Returns:
        A schema.Dataset.

    Raises:
        errors.DataError: a missing file or folder, or bad data in it (in `data.strict` mode
            also a duplicate row, a price <= 0 or an implausible time).
    """
    # Imported when chosen: a source pulls in its own readers (openpyxl, pyarrow) only if used.
    if data.dataset == "synthetic":
        from tfrec.data import synthetic

        s = data.synthetic
        return synthetic.generate(s.num_items, s.num_users, s.num_events, s.num_categories, s.seed)
    if data.dataset == "csv":
        from tfrec.data import csv_loader

        csv_config, base_dir = data.csv, data.path
        if data.path and not Path(data.path).is_dir():
            _require(data.path, folder=False)
            csv_config = dataclasses.replace(csv_config, interactions=str(data.path))
            # A relative catalog name means "beside the interactions file", not the cwd.
            base_dir = str(Path(data.path).parent)
        return csv_loader.load(csv_config, base_dir=base_dir, rules=rules(data))
    if data.dataset == "online-retail":
        from tfrec.data import online_retail

        return online_retail.load(_require(data.path, folder=False), rules(data))
    if data.dataset == "movielens":
        from tfrec.data import movielens

        return movielens.load(_require(data.path, folder=True), rules(data))
    if data.dataset == "amazon-reviews":
        from tfrec.data import amazon_reviews

        return amazon_reviews.load(_require(data.path, folder=False), rules(data), data.split)
    raise errors.ConfigError(f"`data.dataset` must be one of {DATASETS}, received {data.dataset!r}")


def rules(data: config_lib.DataConfig) -> cleaning.Rules:
    """The cleaning rules that `data` sets (strict mode, plausible times, field size)."""
    return cleaning.Rules(
        strict=data.strict,
        min_timestamp=data.min_timestamp,
        max_timestamp=data.max_timestamp,
        max_field_size=data.max_field_size,
    )


def _require(path: Optional[str], folder: bool) -> Path:
    what = "folder" if folder else "file"
    if not path:
        raise errors.DataError(f"`data.path` must name the dataset {what}, received {path!r}")
    p = Path(path)
    if not (p.is_dir() if folder else p.is_file()):
        raise errors.DataError(
            f"expected an existing {what}, received a path that is not one", path=p
        )
    return p
