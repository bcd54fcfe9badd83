"""How far a new window of events is from the window a model was trained on.

Each check compares one statistic of the new window with the training window and a threshold
(`tfrec.config.DataGateConfig`): the share of rows the cleaning dropped, the volume of events
per day, the event-type mix (population stability index), the share of events on items the
model has never seen, and the distribution of event prices (two-sample Kolmogorov-Smirnov
distance, `scipy.stats.ks_2samp`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np
import pandas as pd
import scipy.stats

from tfrec import config as config_lib
from tfrec.data import schema

_DAY = 86_400.0
# A share of 0 makes the index infinite: every share is at least this (a common choice).
_PSI_FLOOR = 1e-4


@dataclasses.dataclass(frozen=True)
class Check:
    """One statistic of the new window against its threshold.

    Args:
        name: str. What is measured.
        value: float or None. The measured value (None: not measurable, e.g. no prices).
        threshold: str. The condition it must meet, e.g. "<= 0.2".
        passed: bool. Whether it meets it (an unmeasurable check passes, with a note).
        detail: str. What the value is made of, for the person reading the verdict.
    """

    name: str
    value: Optional[float]
    threshold: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def population_stability_index(expected: pd.Series, actual: pd.Series) -> float:
    """PSI of two category count series: sum over categories of (a - e) * ln(a / e) on shares.

    Categories missing from one side count 0 there (floored at `_PSI_FLOOR`). Below 0.1 is
    usually read as no shift, 0.1-0.25 as moderate, above 0.25 as large.
    """
    categories = expected.index.union(actual.index)
    e = expected.reindex(categories, fill_value=0).to_numpy(np.float64)
    a = actual.reindex(categories, fill_value=0).to_numpy(np.float64)
    e = np.maximum(e / max(e.sum(), 1.0), _PSI_FLOOR)
    a = np.maximum(a / max(a.sum(), 1.0), _PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _per_day(interactions: pd.DataFrame) -> float:
    ts = interactions["timestamp"].to_numpy()
    days = max((float(ts.max()) - float(ts.min())) / _DAY, 1.0) if len(ts) else 1.0
    return len(ts) / days


def compare(
    train: pd.DataFrame,
    window: schema.Dataset,
    known_items: np.ndarray,
    gate: config_lib.DataGateConfig,
) -> list[Check]:
    """The checks of `window` against the training interactions `train`.

    Args:
        train: pd.DataFrame. The training window's interactions (canonical columns).
        window: schema.Dataset. The new window as loaded and cleaned, with its cleaning report.
        known_items: np.ndarray of str. Item ids the model knows (its catalog).
        gate: DataGateConfig. The thresholds.

    Returns:
        list of Check, in a fixed order.
    """
    events = window.interactions
    report = window.report
    dropped = sum(report.dropped.values())
    dropped_share = dropped / max(report.rows_read, 1)
    checks = [
        Check(
            "dropped_share",
            round(dropped_share, 6),
            f"<= {gate.max_dropped_share:g}",
            dropped_share <= gate.max_dropped_share,
            f"{dropped} of {report.rows_read} rows dropped by cleaning: "
            + (", ".join(f"{k} {v}" for k, v in report.dropped.items() if v) or "none"),
        )
    ]
    ratio = _per_day(events) / max(_per_day(train), 1e-9)
    checks.append(
        Check(
            "volume_ratio",
            round(ratio, 4),
            f"in [{gate.min_volume_ratio:g}, {gate.max_volume_ratio:g}]",
            gate.min_volume_ratio <= ratio <= gate.max_volume_ratio,
            f"{_per_day(events):.1f} events/day in the window, {_per_day(train):.1f} in training",
        )
    )
    psi = population_stability_index(
        train["event_type"].value_counts(), events["event_type"].value_counts()
    )
    mix = events["event_type"].value_counts(normalize=True).round(3).to_dict()
    checks.append(
        Check(
            "event_type_psi",
            round(psi, 6),
            f"<= {gate.max_event_type_psi:g}",
            psi <= gate.max_event_type_psi,
            f"window mix {mix}",
        )
    )
    new = ~events["item_id"].isin(known_items)
    new_share = float(new.mean()) if len(events) else 0.0
    checks.append(
        Check(
            "new_item_share",
            round(new_share, 6),
            f"<= {gate.max_new_item_share:g}",
            new_share <= gate.max_new_item_share,
            f"{int(new.sum())} events on {events.loc[new, 'item_id'].nunique()} items the model "
            "has never seen",
        )
    )
    old_prices = train["price"].dropna().to_numpy(np.float64)
    new_prices = events["price"].dropna().to_numpy(np.float64)
    if len(old_prices) and len(new_prices):
        ks = float(scipy.stats.ks_2samp(old_prices, new_prices).statistic)
        checks.append(
            Check(
                "price_ks",
                round(ks, 6),
                f"<= {gate.max_price_ks:g}",
                ks <= gate.max_price_ks,
                f"median price {np.median(new_prices):.2f} in the window, "
                f"{np.median(old_prices):.2f} in training",
            )
        )
    else:
        checks.append(
            Check("price_ks", None, f"<= {gate.max_price_ks:g}", True, "no prices to compare")
        )
    return checks
