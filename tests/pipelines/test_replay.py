"""`tfrec replay`: month boundaries, the plot, and (slow) a two-month replay of the tiny data."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct

import numpy as np
import pandas as pd
import pytest

from tests import harness
from tests.conftest import SYNTHETIC_CSV
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import synthetic
from tfrec.pipelines import replay, replay_chart, window_eval


def _log(first: str, last: str) -> pd.DataFrame:
    stamps = pd.date_range(first, last, freq="6h", tz="UTC")
    return pd.DataFrame({"timestamp": stamps.as_unit("s").asi8.astype("int64")})


def test_month_starts_drop_a_partial_last_month():
    starts = replay.month_starts(_log("2010-12-01", "2011-12-09"), months=2)
    iso = [pd.Timestamp(s, unit="s", tz="UTC").strftime("%Y-%m-%d") for s in starts]
    # Base < Sep; update on Sep (evaluate Oct), on Oct (evaluate Nov); December is partial.
    assert iso == ["2011-09-01", "2011-10-01", "2011-11-01", "2011-12-01"]
    full = replay.month_starts(_log("2011-01-01", "2011-06-25"), months=1)
    assert pd.Timestamp(full[-1], unit="s").strftime("%Y-%m-%d") == "2011-07-01"


def test_too_few_months_are_refused():
    with pytest.raises(errors.ConfigError, match="`--months 5` needs 7 full months"):
        replay.month_starts(_log("2011-01-01", "2011-06-25"), months=5)


def test_the_plot_is_a_png(tmp_path):
    rows = [
        {
            "month": m,
            "arm": arm,
            "recall@50": 0.2 + i / 10,
            "ndcg@10": 0.1 + i / 20,
            "new_items_recall@50": i / 10,
            "same_day_recall@50": None if arm == "never" else i / 20,  # None: no such query
            "refresh_lag_seconds": None if arm == "never" else 3600,
        }
        for m in ("2011-10", "2011-11")
        for i, arm in enumerate(replay.ARMS)
    ]
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no Chromium for kaleido to render PNGs (`.ci/run` installs Debian's)")
    assert replay_chart.plot(rows, tmp_path / "replay.png")
    png = (tmp_path / "replay.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == replay_chart.PNG_SIZE  # IHDR width, height
    html = (tmp_path / "replay.html").read_text(encoding="utf-8")
    assert "on items listed that day" in html
    assert "Recall@50 on new items" in html and "updated monthly + refresh 1 h behind" in html
    assert "gated: champion after each month's gates + refresh 1 h behind" in html


@pytest.mark.slow
def test_a_two_month_replay_of_the_tiny_data(tmp_path):
    data = tmp_path / "data"
    sizes = config_lib.load(harness.TINY_CONFIG).data.synthetic
    synthetic.write(synthetic.generate(**dataclasses.asdict(sizes)), data)  # Jan-Jun 2024
    overrides = [*harness.TINY_RUN_OVERRIDES, *SYNTHETIC_CSV, f"data.path={data}"]
    config = config_lib.load(harness.TINY_CONFIG, [*overrides, "update.epochs=1"])
    result = replay.replay(config, 2, tmp_path / "replay")
    cells = {(r["month"], r["arm"]) for r in result["rows"]}
    assert cells == {(m, a) for m in ("2024-05", "2024-06") for a in replay.ARMS}
    for row in result["rows"]:
        assert 0 <= row["ndcg@10"] <= 1 and 0 <= row["recall@50"] <= 1 and row["queries"] > 0
        assert (row["seconds"] > 0) == (not row["arm"].startswith("never"))
        assert (row["refresh_lag_seconds"] is None) == (row["arm"] == "never")
        assert row["new_items_queries"] >= row["same_day_queries"] >= 0
        assert (row["same_day_recall@50"] is None) == (row["same_day_queries"] == 0)
    assert set(result["new_item_pairs"]) == {"2024-05", "2024-06"}
    assert set(result["gates"]) == {"2024-05", "2024-06"}
    for month, decision in result["gates"].items():
        assert (tmp_path / "replay" / decision["quality"]["path"]).is_file()
        gated = next(r for r in result["rows"] if r["month"] == month and r["arm"] == "gated")
        # The gated arm serves `stable`: the updated model exactly when it was promoted.
        same = {k: gated[k] for k in ("recall@50", "ndcg@10")}
        updated = next(
            r for r in result["rows"] if r["month"] == month and r["arm"] == "updated+refresh"
        )
        assert (same == {k: updated[k] for k in same}) >= decision["promoted"]
    assert result["release"]["stable"] == decision["stable"]
    assert json.loads((tmp_path / "replay" / "replay.json").read_text()) == result
    assert (tmp_path / "replay" / "replay.png").stat().st_size > 0


def _with_new_items(art, first: int, lag: int):
    """The artifact's data plus a later window of four invoices on two items it never saw:
    `new-x` first bought at `first`, then one second before the lag has passed since, then
    one second after; `new-y` first bought four days later (its own first event). Returns the
    dataset, the window's start and end; queries in that chronological order."""
    from tfrec.data import schema

    old = art.dataset()
    users = pd.unique(old.interactions["user_id"])[:4]
    stamps = [first, first + lag - 1, first + lag + 1, first + 4 * 86400]
    window = pd.DataFrame(
        {
            "user_id": users,
            "item_id": ["new-x", "new-x", "new-x", "new-y"],
            "timestamp": stamps,
            "event_type": "purchase",
            "value": 1.0,
            "quantity": 1.0,
            "price": 2.5,
        }
    )
    category = old.items["category"].iloc[0]
    new = pd.DataFrame(
        {
            "item_id": ["new-x", "new-y"],
            "title": ["red enamel teapot", "blue glass vase"],
            "description": ["a teapot", "a vase"],
            "category": [category, category],
            "price": [2.5, 4.0],
        }
    )
    inter = pd.concat([old.interactions, window], ignore_index=True)
    items = pd.concat([old.items, new], ignore_index=True)
    data = schema.Dataset(old.name, inter, items, old.users, old.report)
    return data, first - 2 * 86400, stamps[-1] + 1


def test_a_refreshed_index_ranks_an_item_once_the_lag_has_passed_since_its_first_event(tiny_run):
    from tfrec import artifact

    art = artifact.Artifact(tiny_run.artifact)
    lag = art.config.replay.refresh_lag_seconds
    last = int(art.dataset().interactions["timestamp"].max())
    first = (last // 86400 + 6) * 86400 + 9 * 3600  # 09:00 UTC, days after the model's data
    data, start, end = _with_new_items(art, first, lag)
    refreshed = window_eval.window_result(
        art.root, data, start, end, refresh_lag_seconds=lag, new_items=True
    )
    served = window_eval.window_result(art.root, data, start, end, new_items=True)
    today = window_eval.window_result(art.root, data, start, end)
    bottom = 1.0 / refreshed.num_items  # MRR of an item ranked behind every other
    assert refreshed.num_items == served.num_items == today.num_items + 2
    mrr = refreshed.per_query["mrr"]
    # Not in the index of its own first event, nor one second before the lag has passed; one
    # second after, a candidate. `new-y` is bought once: its first event, out of reach.
    assert mrr[0] == mrr[1] == bottom and mrr[2] > bottom and mrr[3] == bottom
    assert refreshed.metrics[window_eval.NEW_IN_WINDOW]["queries"] == 4
    # Listed the same day, before the query: the two later `new-x` queries (not the first
    # events, which no index held before them).
    assert refreshed.metrics[window_eval.LISTED_SAME_DAY]["queries"] == 2
    assert served.metrics[window_eval.LISTED_SAME_DAY]["recall@50"] == 0.0
    reach = replay.new_item_reach(art.config, data, start, end)
    assert reach == {"pairs": 4, "reachable_pairs": 1, "refresh_lag_seconds": lag}
    # Served as trained, the model can never return an item outside its catalog.
    np.testing.assert_array_equal(served.per_query["mrr"], np.full(4, bottom))
    # Without `new_items` (as before, and as `tfrec gate quality` ranks), they do not count.
    assert today.metrics["all"]["queries"] == 0 and today.dropped["all"] == 4
