"""A query-to-item search benchmark from product reviews: later summaries find their item.

How it is built (`build`), for a review log with no product titles (Amazon 2014 5-core):

* Time cut. `cutoff = first + text_share * (last - first)` over the review times. Reviews
  written before it are the *text window*, the others the *query window*.
* Items. The catalog is every item with at least one text-window review. An item's text is
  its text-window reviews, oldest first, each as `summary. text`, joined by blank lines; each
  such review is also kept apart (`reviews`), for scorers that match single reviews.
* Queries. Each query-window review whose summary has at least `min_query_words`
  whitespace-separated words and whose item is in the catalog: its summary is the query, its
  item the one relevant answer. No query-window review is ever in an item's text, so neither
  the query's own review nor any later review can leak into what is searched.

Limits: a summary is what a reviewer wrote about an item they already own, not what a shopper
types before buying ("Great strings", "Works as advertised"), so many queries are vague or
fit hundreds of items equally; exactly one item counts as relevant, so a query also answered
well by a similar product scores zero; items are only those with reviews before the cut, and
their text is other people's opinions, not a description. Absolute figures are low and should
only be compared between scorers on the same build.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

REVIEW_SEPARATOR = "\n\n"


@dataclasses.dataclass
class SearchSet:
    """Queries, the catalog they search, and what each item's text is made of.

    Args:
        item_ids: object array [num_items]. Catalog item ids; position = catalog index.
        item_texts: object array [num_items]. Each item's text-window reviews joined.
        review_items: int array [num_reviews]. Catalog index of each text-window review.
        review_texts: object array [num_reviews]. Each text-window review as `summary. text`.
        review_records: int array [num_reviews]. Source record of each text-window review.
        queries: object array [num_queries]. Query texts (query-window summaries).
        relevant: int array [num_queries]. Catalog index of each query's item.
        query_records: int array [num_queries]. Source record of each query's review.
        cutoff: float. Unix seconds dividing the text window from the query window.
        review_summaries: object array [num_reviews]. The summary alone of each text-window
            review: short text written before the cut, like a query but never one.
    """

    item_ids: np.ndarray
    item_texts: np.ndarray
    review_items: np.ndarray
    review_texts: np.ndarray
    review_records: np.ndarray
    queries: np.ndarray
    relevant: np.ndarray
    query_records: np.ndarray
    cutoff: float
    review_summaries: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros([0], dtype=object)
    )

    @property
    def num_items(self) -> int:
        return int(self.item_ids.size)

    def summary(self) -> dict:
        """Counts and the cut, JSON-ready."""
        return {
            "items": self.num_items,
            "text_reviews": int(self.review_texts.size),
            "queries": int(self.queries.size),
            "cutoff_utc": pd.Timestamp(self.cutoff, unit="s").isoformat(timespec="seconds"),
        }


def review_text(summary: str, text: str) -> str:
    """One review as item text: `summary. text` (either part may be empty)."""
    summary, text = str(summary).strip(), str(text).strip()
    if summary and text:
        return f"{summary}. {text}"
    return summary or text


def build(reviews: pd.DataFrame, text_share: float = 0.8, min_query_words: int = 2) -> SearchSet:
    """Builds the benchmark described in the module docstring.

    Args:
        reviews: pd.DataFrame with `record`, `item_id`, `summary`, `text` and `timestamp`
            (`amazon_reviews.read_reviews`).
        text_share: float in (0, 1). Share of the time range whose reviews make item text.
            Defaults to 0.8.
        min_query_words: int >= 1. Fewest words of a summary used as a query. Defaults to 2.

    Returns:
        SearchSet.

    Raises:
        ValueError: a bad argument, or a log that leaves no item or no query.
    """
    if not 0.0 < text_share < 1.0:
        raise ValueError(f"`text_share` must be in (0, 1), received {text_share!r}")
    if isinstance(min_query_words, bool) or not isinstance(min_query_words, int):
        raise ValueError(f"`min_query_words` must be an int >= 1, received {min_query_words!r}")
    if min_query_words < 1:
        raise ValueError(f"`min_query_words` must be an int >= 1, received {min_query_words!r}")
    ts = reviews["timestamp"].to_numpy(dtype=np.int64)
    if ts.size == 0:
        raise ValueError("`reviews` must hold at least one review, received none")
    cutoff = float(ts.min()) + text_share * float(ts.max() - ts.min())
    early = reviews[ts < cutoff].sort_values(["timestamp", "record"], kind="stable")
    late = reviews[ts >= cutoff].sort_values(["timestamp", "record"], kind="stable")

    item_ids = np.array(sorted(pd.unique(early["item_id"].astype(str))), dtype=object)
    index = pd.Index(item_ids)
    review_items = index.get_indexer(early["item_id"].astype(str).to_numpy(dtype=object))
    review_texts = np.array(
        [review_text(s, t) for s, t in zip(early["summary"], early["text"], strict=True)],
        dtype=object,
    )
    joined = pd.Series(review_texts).groupby(review_items, sort=True).agg(REVIEW_SEPARATOR.join)
    item_texts = np.array([joined.get(i, "") for i in range(item_ids.size)], dtype=object)

    summaries = late["summary"].astype(str).str.strip()
    words = np.array([len(s.split()) for s in summaries], dtype=np.int64)
    relevant = index.get_indexer(late["item_id"].astype(str).to_numpy(dtype=object))
    keep = (words >= min_query_words) & (relevant >= 0)
    if item_ids.size == 0 or not keep.any():
        raise ValueError(
            f"`reviews` must leave at least one item before the cut and one query after it, "
            f"received {item_ids.size} items and {int(keep.sum())} queries"
        )
    return SearchSet(
        item_ids=item_ids,
        item_texts=item_texts,
        review_items=review_items.astype(np.int64),
        review_texts=review_texts,
        review_records=early["record"].to_numpy(dtype=np.int64),
        queries=summaries.to_numpy(dtype=object)[keep],
        relevant=relevant[keep].astype(np.int64),
        query_records=late["record"].to_numpy(dtype=np.int64)[keep],
        cutoff=cutoff,
        review_summaries=early["summary"].astype(str).str.strip().to_numpy(dtype=object),
    )
