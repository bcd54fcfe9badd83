"""`tfrec replay`: month boundaries, the plot, and (slow) a two-month replay of the tiny data."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct

import pandas as pd
import pytest

from tests import harness
from tests.conftest import SYNTHETIC_CSV
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import synthetic
from tfrec.pipelines import replay


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
        {"month": m, "arm": arm, "recall@50": 0.2 + i / 10, "ndcg@10": 0.1 + i / 20}
        for m in ("2011-10", "2011-11")
        for i, arm in enumerate(replay.ARMS)
    ]
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no Chromium for kaleido to render PNGs (`.ci/run` installs Debian's)")
    assert replay.plot(rows, tmp_path / "replay.png")
    png = (tmp_path / "replay.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (960, 420)  # IHDR width, height
    assert "ndcg@10" in (tmp_path / "replay.html").read_text(encoding="utf-8")


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
        assert (row["seconds"] > 0) == (row["arm"] != "never")
    assert json.loads((tmp_path / "replay" / "replay.json").read_text()) == result
    assert (tmp_path / "replay" / "replay.png").stat().st_size > 0
