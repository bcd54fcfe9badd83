"""Loader for Amazon review logs (McAuley et al., 2014 release, e.g. the musical-instruments 5-core).

The files have no product metadata: no title, description or category. The only text about an
item is what reviewers wrote, and a review is written at the time of the interaction it
records, so an item's text is built from the reviews written *before the validation window*
only. Items first reviewed later enter the catalog with no text: the model cannot read their
test reviews (the very events it is asked to predict).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import cleaning, fields, schema, split, textfile

COLUMNS = ("reviewerID", "asin", "overall", "summary", "reviewText", "unixReviewTime")
HELPFUL = "helpful_yes"  # optional: ranks the reviews that make an item's text
_CSV = textfile.TextFormat()
# Review summaries per item in its title, and characters of review text in its description:
# the text tower reads a few dozen WordPiece tokens, so more text is not read anyway.
SUMMARIES = 5
DESCRIPTION_CHARS = 400


def load(
    path: os.PathLike | str,
    rules: Optional[cleaning.Rules] = None,
    split_config: Optional[config_lib.SplitConfig] = None,
) -> schema.Dataset:
    """Loads an Amazon review CSV as `rating` events, with item text from earlier reviews.

    Args:
        path: str. A `.csv` or `.csv.gz` with the columns COLUMNS (the flattened 2014 files:
            `reviewerID, asin, reviewerName, overall, summary, reviewText, helpful_yes,
            helpful_total, unixReviewTime, reviewTime`).
        rules: cleaning.Rules or None. Strict mode, plausible times, field size.
        split_config: SplitConfig or None. Its `validation_start` bounds the reviews that make
            item text (the same cut-off `split.temporal_split` computes); None: all reviews,
            for looking at the data, never for evaluation.

    Returns:
        A schema.Dataset named `amazon-reviews`.

    Raises:
        errors.DataError: the file is missing, lacks a column, or holds a malformed rating or
            time (naming row and field); in strict mode also a duplicate row or an implausible
            time.
    """
    rules = cleaning.Rules() if rules is None else rules
    path = Path(path)
    raw = textfile.read_table(path, _CSV, max_field_size=rules.max_field_size)
    fields.require_columns(raw, COLUMNS, path)
    report = schema.CleaningReport(source=str(path), rows_read=len(raw))
    rating = fields.parse_numbers(raw["overall"], path, "overall", _CSV, "a star rating like 5.0")
    seconds = fields.parse_numbers(
        raw["unixReviewTime"], path, "unixReviewTime", _CSV, "unix seconds like 1393545600"
    )
    helpful = (
        fields.parse_numbers(raw[HELPFUL], path, HELPFUL, _CSV, "a vote count like 3")
        if HELPFUL in raw.columns
        else np.zeros(len(raw))
    )
    user = raw["reviewerID"].str.strip().to_numpy(dtype=object)
    item = raw["asin"].str.strip().to_numpy(dtype=object)
    cleaner = cleaning.Cleaner(report, raw.index, path, _CSV, rules)
    missing = (user == "") | (item == "") | np.isnan(rating) | np.isnan(seconds)
    cleaner.drop("missing reviewerID, asin, overall or unixReviewTime", missing)
    whole = np.clip(np.nan_to_num(seconds), -(2.0**62), 2.0**62).astype(np.int64)
    cleaner.times(raw["unixReviewTime"], whole, ~np.isnan(seconds), "unixReviewTime")
    cleaner.duplicates(raw)
    cleaner.finish()
    keep = cleaner.keep
    interactions = pd.DataFrame(
        {
            "user_id": user[keep],
            "item_id": item[keep],
            "timestamp": whole[keep],
            "event_type": "rating",
            "value": rating[keep],
            "quantity": 1.0,
            "price": np.nan,
        }
    ).sort_values("timestamp", kind="stable")
    if len(interactions) == 0:
        raise errors.DataError("expected at least one usable review, received none", path=path)
    report.rows_kept = len(interactions)
    reviews = pd.DataFrame(
        {
            "item_id": item[keep],
            "timestamp": whole[keep],
            "summary": raw["summary"].str.strip().to_numpy(dtype=object)[keep],
            "text": raw["reviewText"].str.strip().to_numpy(dtype=object)[keep],
            "helpful": np.nan_to_num(helpful)[keep],
        }
    )
    until = _text_cutoff(interactions, split_config)
    items = item_text(reviews, interactions["item_id"].unique(), until)
    report.treatments = {
        "reviews": "Each review is a `rating` event whose value is the star rating.",
        "text": (
            f"There is no product metadata: an item's title joins up to {SUMMARIES} review "
            f"summaries and its description starts the most helpful review's text, both from "
            "reviews written before "
            + (cleaning.iso(until) + " UTC (the validation start)" if until else "any cut-off")
            + "; items first reviewed later have no text."
        ),
        "price": "Amazon review files have no prices: `price` is NaN.",
        "category": "Amazon review files have no categories: `category` is empty.",
    }
    users = pd.DataFrame({"user_id": pd.unique(interactions["user_id"])})
    return schema.Dataset("amazon-reviews", interactions, items, users, report)


def read_reviews(path: os.PathLike | str, max_field_size: int = textfile.MAX_FIELD_SIZE):
    """Every review of an Amazon review CSV with its text, one row per data record.

    For text benchmarks that need each review apart (`load` keeps only the item text built
    from them). Records are kept as written, none dropped or reordered; `record` is the 0-based
    data record (`textfile.line_of` maps it to the file's row), so a review can be traced back.

    Args:
        path: str. A `.csv` or `.csv.gz` with the columns COLUMNS.
        max_field_size: int. Most characters one field may hold.

    Returns:
        pd.DataFrame with `record` (int64), `user_id`, `item_id`, `summary`, `text` (str) and
        `timestamp` (int64 unix seconds).

    Raises:
        errors.DataError: the file is missing, lacks a column, or holds an empty reviewerID or
            asin or a malformed time (naming row and field).
    """
    path = Path(path)
    raw = textfile.read_table(path, _CSV, max_field_size=max_field_size)
    fields.require_columns(raw, COLUMNS, path)
    seconds = fields.parse_numbers(
        raw["unixReviewTime"], path, "unixReviewTime", _CSV, "unix seconds like 1393545600"
    )
    for name, bad in (
        ("unixReviewTime", np.isnan(seconds)),
        ("reviewerID", (raw["reviewerID"].str.strip() == "").to_numpy()),
        ("asin", (raw["asin"].str.strip() == "").to_numpy()),
    ):
        if bad.any():
            row = textfile.line_of(path, int(np.argmax(bad)), _CSV)
            raise errors.DataError(
                "expected a value, received none", path=path, row=row, field=name
            )
    return pd.DataFrame(
        {
            "record": np.arange(len(raw), dtype=np.int64),
            "user_id": raw["reviewerID"].str.strip().to_numpy(dtype=object),
            "item_id": raw["asin"].str.strip().to_numpy(dtype=object),
            "summary": raw["summary"].str.strip().to_numpy(dtype=object),
            "text": raw["reviewText"].str.strip().to_numpy(dtype=object),
            "timestamp": np.nan_to_num(seconds).astype(np.int64),
        }
    )


def item_text(reviews: pd.DataFrame, item_ids: np.ndarray, until: Optional[int]) -> pd.DataFrame:
    """One catalog row per item, its text from the reviews with `timestamp < until`.

    Args:
        reviews: pd.DataFrame with `item_id`, `timestamp`, `summary`, `text`, `helpful`.
        item_ids: array of str. Every item of the log, in catalog order.
        until: int or None. Unix seconds; None: every review.

    Returns:
        pd.DataFrame with schema.ITEM_COLUMNS.
    """
    known = reviews if until is None else reviews[reviews["timestamp"] < until]
    # Most helpful first, then oldest: the text an item had longest.
    known = known.sort_values(["helpful", "timestamp"], ascending=[False, True], kind="stable")
    titles: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for item_id, group in known.groupby("item_id", sort=False):
        summaries = [s for s in group["summary"] if s][:SUMMARIES]
        titles[str(item_id)] = " · ".join(summaries)
        text = next((t for t in group["text"] if t), "")
        descriptions[str(item_id)] = text[:DESCRIPTION_CHARS]
    ids = [str(i) for i in item_ids]
    return pd.DataFrame(
        {
            "item_id": np.array(ids, dtype=object),
            "title": np.array([titles.get(i, "") for i in ids], dtype=object),
            "description": np.array([descriptions.get(i, "") for i in ids], dtype=object),
            "category": "",
            "price": np.float32(np.nan),
        }
    )


def _text_cutoff(
    interactions: pd.DataFrame, split_config: Optional[config_lib.SplitConfig]
) -> Optional[int]:
    if split_config is None:
        return None
    ts = interactions["timestamp"].to_numpy(dtype=np.int64)
    return split.resolve_cutoff(
        split_config.validation_start, int(ts.min()), int(ts.max()), "split.validation_start"
    )
