"""Helpers for the shard tests: a small log with rows every cleaning rule drops, and reading back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec.data import schema, shards, synthetic

# Column mapping of the files `synthetic.write` produces.
CSV = config_lib.CsvConfig(
    interactions="interactions.csv",
    catalog="items.csv",
    event_type="event_type",
    value="value",
    quantity="quantity",
    price="price",
    description="description",
    category="category",
)
# Rows each dropped by one rule: missing user, missing item, price <= 0, a time in 1970.
DIRTY = [
    ",{item},1704100000,view,1.0,1.0,3.5",
    "{user},,1704100000,view,1.0,1.0,3.5",
    "{user},{item},1704100000,purchase,1.0,1.0,-2",
    "{user},{item},12,view,1.0,1.0,3.5",
]


def write_log(folder: Path, num_events: int = 3000, seed: int = 0) -> Path:
    """Writes a synthetic log plus the DIRTY rows into `folder`; returns the folder."""
    ds = synthetic.generate(
        num_items=150, num_users=120, num_events=num_events, num_categories=4, seed=seed
    )
    synthetic.write(ds, folder)
    user, item = ds.interactions["user_id"].iloc[0], ds.interactions["item_id"].iloc[0]
    with open(folder / "interactions.csv", "a", encoding="utf-8") as f:
        for line in DIRTY:
            f.write(line.format(user=user, item=item) + "\n")
    return folder


def csv_data(folder: Path, **overrides) -> config_lib.DataConfig:
    return config_lib.DataConfig(dataset="csv", path=str(folder), csv=CSV, **overrides)


def read_events(folder: Path) -> pd.DataFrame:
    """Every event of a shard folder as a canonical interactions frame (shard read order)."""
    columns: dict[str, list] = {name: [] for name in schema.INTERACTION_COLUMNS}
    for batch in shards.dataset(folder, batch_size=1000).as_numpy_iterator():
        for name in columns:
            columns[name].append(batch[name])
    frame = pd.DataFrame({name: np.concatenate(parts) for name, parts in columns.items()})
    for name, dtype in schema.INTERACTION_COLUMNS.items():
        if dtype == "str":
            frame[name] = [v.decode("utf-8") for v in frame[name]]
    return schema.conform(frame, schema.INTERACTION_COLUMNS, "interactions")


def canonical_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by every column, so that two frames of the same events compare equal."""
    frame = schema.conform(frame, schema.INTERACTION_COLUMNS, "interactions")
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)
