"""Tiny hand-made datasets shared by the split, examples, vocab and pipeline tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec.data import schema

DAY = 86400


def interactions(rows: list[tuple]) -> pd.DataFrame:
    """Canonical interactions from (user_id, item_id, timestamp, event_type[, price]) tuples."""
    frame = pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "timestamp": [r[2] for r in rows],
            "event_type": [r[3] for r in rows],
            "value": 1.0,
            "quantity": 1.0,
            "price": [r[4] if len(r) > 4 else math.nan for r in rows],
        }
    )
    return schema.conform(frame, schema.INTERACTION_COLUMNS, "interactions")


def catalog() -> pd.DataFrame:
    """Five items; `e` is never bought in `shop()` training, `d` has no price or category.

    log1p prices of the trained items a, b, c are 1, 3, 2: mean 2, std sqrt(2/3).
    """
    frame = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "title": ["red heart mug", "blue star lamp", "red star cup", "green tin", "zebra rug"],
            "description": ["", "a lamp", "", "", "striped"],
            "category": ["kitchen", "lighting", "kitchen", "", "home"],
            "price": [math.e - 1, math.e**3 - 1, math.e**2 - 1, math.nan, 5.0],
        }
    )
    return schema.conform(frame, schema.ITEM_COLUMNS, "items")


def shop() -> pd.DataFrame:
    """A log over days 0..9: train before day 6, validation days 6-7, test from day 8.

    u1 buys two items in one invoice on day 8 (same second): one query, two relevant items.
    """
    return interactions(
        [
            ("u1", "a", 0 * DAY, "view"),
            ("u2", "b", 1 * DAY, "purchase"),
            ("u1", "a", 2 * DAY, "purchase"),
            ("u1", "b", 3 * DAY, "cart"),
            ("u3", "c", 4 * DAY, "purchase"),
            ("u2", "b", 5 * DAY, "view"),
            ("u1", "c", 6 * DAY, "purchase"),
            ("u4", "d", 7 * DAY, "view"),
            ("u1", "d", 8 * DAY, "purchase"),
            ("u1", "e", 8 * DAY, "purchase"),
            ("u2", "a", 9 * DAY, "purchase"),
        ]
    )


def data_config(**overrides) -> config_lib.DataConfig:
    values = dict(max_history=3, text_length=8, query_text_length=6, vocab_size=80)
    values.update(overrides)
    return config_lib.DataConfig(**values)


def random_log(seed: int, n: int = 300, users: int = 6, items: int = 15) -> pd.DataFrame:
    """Random log with many same-second ties (the leak a naive history would have)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 60, n)) * 10
    return interactions(
        [
            (f"u{rng.integers(users)}", f"i{rng.integers(items)}", int(t), str(e))
            for t, e in zip(ts, rng.choice(schema.EVENT_TYPES[:3], n), strict=True)
        ]
    )
