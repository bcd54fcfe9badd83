"""What a classical baseline sees: the fitting window's interactions and each query's past.

A baseline is fitted on one window of the log (the training window) and then scores queries that
come after it. A query's past has two parts:

* its *profile*: everything the user did strictly before the query time inside the fitting
  window (for validation and test queries: the user's whole training window);
* its *recent events*: the leading slots of the query's history (`EvalQueries.history_item_ids`,
  most recent first) that fall after the fitting window. The other history slots repeat profile
  events, so they are not counted twice.

`Queries.events` joins both into one sequence, most recent first: the recent events, then the
profile. A user unseen in training has an empty profile, so only recent events speak for them;
with none either, baselines fall back to popularity.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse


def _int_array(value, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(value)
    if a.ndim != ndim or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"`{name}` must be a {ndim}-D int array, received {a.dtype} {a.shape}")
    return a.astype(np.int64)


@dataclasses.dataclass
class Window:
    """The interactions a baseline is fitted on, as index arrays.

    Args:
        user: int array [n]. Fitted-user index of each interaction, in [0, num_users).
        item: int array [n]. Catalog index of each interaction, in [0, num_items).
        timestamp: int array [n]. Unix seconds; interactions of one user at one second form a
            session (an invoice in UCI Online Retail).
        num_users: int. Rows of the user x item matrix.
        num_items: int. Catalog size.

    Example:
        >>> window = Window([0, 0, 1], [2, 0, 2], [10, 10, 20], num_users=2, num_items=3)
        >>> window.matrix().toarray().tolist()
        [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    num_users: int
    num_items: int

    def __post_init__(self):
        self.user = _int_array(self.user, "user", 1)
        self.item = _int_array(self.item, "item", 1)
        self.timestamp = _int_array(self.timestamp, "timestamp", 1)
        if not (self.user.shape == self.item.shape == self.timestamp.shape):
            raise ValueError(
                f"`user`, `item` and `timestamp` must have equal lengths, received "
                f"{self.user.size}, {self.item.size} and {self.timestamp.size}"
            )
        for name, a, hi in (
            ("user", self.user, self.num_users),
            ("item", self.item, self.num_items),
        ):
            if a.size and (a.min() < 0 or a.max() >= hi):
                raise ValueError(f"`{name}` must lie in [0, {hi}), received {a.min()}..{a.max()}")

    def matrix(self, binary: bool = False) -> scipy.sparse.csr_matrix:
        """[num_users, num_items] float32 interaction counts (1 per pair when `binary`)."""
        m = scipy.sparse.csr_matrix(
            (np.ones(self.user.size, np.float32), (self.user, self.item)),
            shape=(self.num_users, self.num_items),
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def popularity(self) -> np.ndarray:
        """[num_items] float32 interactions per item."""
        return np.bincount(self.item, minlength=self.num_items).astype(np.float32)

    def sessions(self) -> scipy.sparse.csr_matrix:
        """[num_sessions, num_items] binary matrix of (user, timestamp) groups."""
        keys = pd.MultiIndex.from_arrays([self.user, self.timestamp])
        codes, uniques = pd.factorize(keys)
        m = scipy.sparse.csr_matrix(
            (np.ones(codes.size, np.float32), (codes, self.item)),
            shape=(len(uniques), self.num_items),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m


@dataclasses.dataclass
class Queries:
    """Each query's past: its profile in the fitting window and its recent events after it.

    Args:
        user: int array [q]. Fitted-user index of each query, -1 for users unseen in training.
        history: int array [q, H]. Catalog indices of the query's most recent events, most recent
            first; -1 for padding and items outside the catalog.
        num_recent: int array [q]. Leading history slots that fall after the fitting window.
        profile_offsets: int array [q + 1]. Query i's profile is
            `profile_items[profile_offsets[i]:profile_offsets[i + 1]]`.
        profile_items: int array [nnz]. Catalog indices of fitting-window events strictly before
            each query's time, most recent first.

    Example:
        >>> q = Queries([0], [[4, 2, -1]], [1], [0, 2], [2, 3])  # history 4, 2; 2 in training
        >>> q.events()  # (query row, item, position): 4 is recent, then profile 2, 3
        (array([0, 0, 0]), array([4, 2, 3]), array([0, 1, 2]))
    """

    user: np.ndarray
    history: np.ndarray
    num_recent: np.ndarray
    profile_offsets: np.ndarray
    profile_items: np.ndarray

    def __post_init__(self):
        self.user = _int_array(self.user, "user", 1)
        self.history = _int_array(self.history, "history", 2)
        self.num_recent = _int_array(self.num_recent, "num_recent", 1)
        self.profile_offsets = _int_array(self.profile_offsets, "profile_offsets", 1)
        self.profile_items = _int_array(self.profile_items, "profile_items", 1)
        n = self.user.size
        if self.history.shape[0] != n or self.num_recent.size != n:
            raise ValueError(
                f"`history` and `num_recent` must have one row per query ({n}), received "
                f"{self.history.shape[0]} and {self.num_recent.size}"
            )
        if (
            self.profile_offsets.size != n + 1
            or self.profile_offsets[-1] != self.profile_items.size
        ):
            raise ValueError(
                f"`profile_offsets` must hold {n + 1} offsets ending at len(profile_items) "
                f"({self.profile_items.size}), received {self.profile_offsets.tolist()[:5]}..."
            )
        if np.any(self.num_recent < 0) or np.any(self.num_recent > self.history.shape[1]):
            raise ValueError(
                f"`num_recent` must lie in [0, {self.history.shape[1]}], received "
                f"{self.num_recent.min()}..{self.num_recent.max()}"
            )

    def __len__(self) -> int:
        return int(self.user.size)

    def events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The past of every query as one sequence: recent events, then the profile.

        Returns:
            (row, item, position) int arrays: query row, catalog index and position in the
            query's sequence (0 = most recent). Unknown items (-1) keep their slot but are left
            out, so positions count every event.
        """
        h = self.history.shape[1]
        slot = np.arange(h)[None, :]
        recent = (slot < self.num_recent[:, None]) & (self.history >= 0)
        r_row, r_pos = np.nonzero(recent)
        lengths = np.diff(self.profile_offsets)
        p_row = np.repeat(np.arange(len(self)), lengths)
        p_pos = np.arange(p_row.size) - self.profile_offsets[p_row] + self.num_recent[p_row]
        row = np.concatenate([r_row, p_row])
        item = np.concatenate([self.history[r_row, r_pos], self.profile_items])
        pos = np.concatenate([r_pos, p_pos])
        order = np.lexsort((pos, row))
        return row[order], item[order], pos[order]

    def matrix(self, num_items: int, decay: float = 1.0, binary: bool = False):
        """[q, num_items] float32 CSR: per item, the sum of `decay ** position` over its events.

        With `binary`, every item of the past counts 1 instead.
        """
        row, item, pos = self.events()
        m = scipy.sparse.csr_matrix(
            (np.power(decay, pos, dtype=np.float64), (row, item)), shape=(len(self), num_items)
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m.astype(np.float32)

    def history_matrix(self, num_items: int) -> scipy.sparse.csr_matrix:
        """[q, num_items] float32 CSR of the whole history with linear position decay.

        The event at position p of an H-slot history weighs (H - p) / H; repeats add up.
        """
        h = self.history.shape[1]
        row, pos = np.nonzero(self.history >= 0)
        m = scipy.sparse.csr_matrix(
            ((h - pos) / h, (row, self.history[row, pos])), shape=(len(self), num_items)
        )
        m.sum_duplicates()
        return m.astype(np.float32)


def _ordered_log(user_codes: np.ndarray, ts: np.ndarray):
    """Sort order of a log by (user, time) and a key that keeps it sorted."""
    order = np.lexsort((ts, user_codes))
    lo = int(ts.min()) if ts.size else 0
    span = (int(ts.max()) - lo + 2) if ts.size else 1
    return order, user_codes[order] * span + (ts[order] - lo), lo, span


def _before(key, user, ts, lo, span):
    """Positions in a (user, time)-sorted log: the user's block start and the first event at or
    after `ts` (clipped to the block)."""
    ts = np.clip(ts - lo, -1, span - 1)
    start = np.searchsorted(key, user * span - 1, side="right")
    end = np.searchsorted(key, user * span + ts, side="left")
    return start, np.maximum(start, end)


def from_prepared(
    prepared, eval_queries, window_end: Optional[int] = None
) -> tuple[Window, Queries]:
    """A fitting window and `eval_queries` (validation or test) as baseline inputs.

    Args:
        prepared: tfrec.data.prepared.PreparedData.
        eval_queries: tfrec.data.examples.EvalQueries, e.g. `prepared.validation`.
        window_end: int or None. The window is every event before it (unix seconds); None:
            the training window (before `validation_start`). Test queries may be scored by a
            baseline fitted up to `test_start` (training and validation windows).

    Returns:
        (Window, Queries). Users are indexed in order of first appearance in the window.
    """
    if window_end is None:
        window_end = int(prepared.split.validation_start)
        train = prepared.split.train
    else:
        log = prepared.dataset.interactions
        train = log[log["timestamp"].to_numpy(dtype=np.int64) < int(window_end)]
    items = prepared.catalog_index(train["item_id"].to_numpy())
    keep = items >= 0
    users = pd.Index(pd.unique(train["user_id"].to_numpy(dtype=object)[keep]))
    user = users.get_indexer(train["user_id"].to_numpy(dtype=object)[keep])
    ts = train["timestamp"].to_numpy(dtype=np.int64)[keep]
    window = Window(user, items[keep], ts, len(users), len(prepared.table.item_ids))

    q_user = users.get_indexer(np.asarray(eval_queries.user_id, dtype=object)).astype(np.int64)
    q_ts = np.asarray(eval_queries.timestamp, dtype=np.int64)
    history = prepared.catalog_index(eval_queries.history_item_ids)

    # Profile: the user's training events strictly before the query time, most recent first.
    order, key, lo, span = _ordered_log(window.user, window.timestamp)
    known = q_user >= 0
    start, end = _before(key, np.where(known, q_user, 0), q_ts, lo, span)
    lengths = np.where(known, end - start, 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    rows = np.repeat(np.arange(q_user.size), lengths)
    sorted_pos = end[rows] - 1 - (np.arange(rows.size) - offsets[rows])
    profile = window.item[order[sorted_pos]]

    # Recent: the user's events after the window and before the query, counted in the full log.
    log = prepared.dataset.interactions
    log_ts = log["timestamp"].to_numpy(dtype=np.int64)
    after = log_ts >= window_end
    log_users = pd.Index(pd.unique(log["user_id"].to_numpy(dtype=object)[after]))
    a_user = log_users.get_indexer(log["user_id"].to_numpy(dtype=object)[after])
    _, a_key, a_lo, a_span = _ordered_log(a_user, log_ts[after])
    q_after = log_users.get_indexer(np.asarray(eval_queries.user_id, dtype=object))
    a_start, a_end = _before(a_key, np.maximum(q_after, 0), q_ts, a_lo, a_span)
    num_after = np.where(q_after >= 0, a_end - a_start, 0)
    num_recent = np.minimum(num_after, history.shape[1])
    return window, Queries(q_user, history, num_recent, offsets, profile)
