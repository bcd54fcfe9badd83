"""Tests for the synthetic shop: exact sizes, determinism, the signals it promises, round trip."""

import json
import time

import numpy as np
import pandas as pd
import pytest

import tfrec  # noqa: F401
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import csv_loader, synthetic

LATE = synthetic.START + int(0.85 * synthetic.SPAN)


@pytest.fixture(scope="module")
def ds():
    return synthetic.generate()  # the default dataset: 2000 items, 1000 users, 60000 events


@pytest.fixture(scope="module")
def joined(ds):
    frame = ds.interactions.merge(ds.items[["item_id", "title", "category"]], on="item_id")
    return frame.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def test_sizes_and_schema(ds):
    inter = ds.interactions
    assert len(inter) == 60000 and len(ds.items) == 2000
    assert 0 < len(ds.users) <= 1000 and set(inter["user_id"]) == set(ds.users["user_id"])
    assert ds.items["category"].nunique() == 12
    assert inter["timestamp"].min() >= synthetic.START
    assert inter["timestamp"].max() < synthetic.START + synthetic.SPAN
    assert set(ds.users["segment"]) <= set(synthetic.SEGMENTS)
    prices = ds.items.set_index("item_id")["price"]
    np.testing.assert_array_equal(inter["price"], prices[inter["item_id"]].to_numpy())


def test_deterministic_in_seed():
    a, b = synthetic.generate(120, 60, 1500, 4, seed=3), synthetic.generate(120, 60, 1500, 4, 3)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)
    c = synthetic.generate(120, 60, 1500, 4, seed=4)
    assert not a.interactions["item_id"].equals(c.interactions["item_id"])


def test_funnel(ds):
    counts = ds.interactions["event_type"].value_counts()
    assert counts["view"] > 5 * counts["cart"] > 0
    assert counts["cart"] > counts["purchase"] > 0.3 * counts["cart"]


def test_text_describes_attributes(ds):
    first = ds.items.iloc[0]
    # Title: "<Variant> <material> <kind> by <Brand>"; the description repeats them.
    brand = first["title"].split(" by ")[-1]
    assert brand in first["description"] and first["category"] in first["description"]
    assert ds.items["title"].str.contains(" by ").all()
    assert ds.items["description"].str.contains(r"range\. \w[\w ]*: ").all()


def test_cold_start_items_and_users(ds):
    first_item = ds.interactions.groupby("item_id")["timestamp"].min()
    first_user = ds.interactions.groupby("user_id")["timestamp"].min()
    assert (first_item > LATE).mean() > 0.08  # 15% of items launch then
    assert (first_user > LATE).mean() > 0.03


def test_choices_follow_the_previous_event(joined):
    views = joined[joined["event_type"] == "view"]
    same_user = views["user_id"].to_numpy()[1:] == views["user_id"].to_numpy()[:-1]
    same_cat = views["category"].to_numpy()[1:] == views["category"].to_numpy()[:-1]
    chance = (views["category"].value_counts(normalize=True) ** 2).sum()
    assert same_cat[same_user].mean() > 0.5 > 3 * chance


def test_choices_follow_attributes_in_the_text(joined):
    # Within a colour category, each user's most frequent colour (the title's first word) is far
    # more frequent than the 1 in 10 that indifference to colour would give.
    apparel = joined[joined["category"] == "apparel"]
    colour = apparel["title"].str.split(" ").str[0]
    top = colour.groupby(apparel["user_id"]).agg(
        lambda s: s.value_counts(normalize=True).iloc[0] if len(s) >= 20 else np.nan
    )
    assert top.dropna().mean() > 0.25


def test_consumables_are_bought_again(joined):
    buys = joined[joined["event_type"] == "purchase"]
    repeats = buys[buys.duplicated(["user_id", "item_id"])]
    assert len(repeats) > 100
    consumable = {"beauty", "grocery", "pet supplies"}
    # Repeats are mostly consumables, far beyond their share of first purchases.
    firsts = buys[~buys.duplicated(["user_id", "item_id"])]
    assert repeats["category"].isin(consumable).mean() > 0.6
    assert (
        repeats["category"].isin(consumable).mean() > 2 * firsts["category"].isin(consumable).mean()
    )


def test_write_reads_back_with_csv_loader(tmp_path):
    ds = synthetic.generate(120, 60, 1500, 4, seed=0)
    synthetic.write(ds, tmp_path / "shop")
    names = sorted(p.name for p in (tmp_path / "shop").iterdir())
    assert names == ["interactions.csv", "items.csv", "report.json", "users.csv"]  # no temp files
    csv = config_lib.CsvConfig(
        interactions="interactions.csv", catalog="items.csv", event_type="event_type",
        value="value", quantity="quantity", price="price", description="description",
        category="category",
    )  # fmt: skip
    back = csv_loader.load(csv, base_dir=tmp_path / "shop")
    pd.testing.assert_frame_equal(back.interactions, ds.interactions)
    pd.testing.assert_frame_equal(back.items, ds.items.reset_index(drop=True))
    report = json.loads((tmp_path / "shop" / "report.json").read_text())
    assert report["rows_kept"] == 1500


def test_rejects_empty_sizes():
    with pytest.raises(errors.DataError, match="`num_events` must be >= 1, received 0"):
        synthetic.generate(num_events=0)


@pytest.mark.slow
def test_benchmark_scale():
    start = time.perf_counter()
    ds = synthetic.generate(num_items=1_000_000, num_users=1_000_000, num_events=10_000_000)
    assert len(ds.interactions) == 10_000_000 and len(ds.items) == 1_000_000
    print(f"1M items / 10M events in {time.perf_counter() - start:.0f} s")
