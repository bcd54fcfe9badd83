"""The request schema: every input of the served signatures, with its dtype, shape and default."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from tfrec import errors, features

if TYPE_CHECKING:
    import tensorflow as tf

# The signatures' input specs, the Python request builder, the warmup records, the server's
# limits and REST decoding and the client all read this one table, so a request that fits one
# fits all. `tfrec.features` is its sibling: the model's feature spec, per example, which the
# query-side request inputs feed after the graph's lookups and padding.

# Signature names of the exported module.
RETRIEVE, RANK, RECOMMEND = "retrieve", "rank", "recommend"
SIGNATURES = (RETRIEVE, RANK, RECOMMEND)

_NUMPY_DTYPES = {"string": np.dtype(object), "int32": np.dtype(np.int32), "bool": np.dtype(bool)}
_SECONDS_PER_DAY = 86400
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday = 0


class RequestError(errors.TfrecError, ValueError):
    """A request that does not fit the schema; the message names the input."""


@dataclasses.dataclass(frozen=True)
class RequestInput:
    """One input of the served signatures, batch-major: row b is request b.

    Args:
        name: str. The signature's input name.
        dtype: str. `"string"`, `"int32"` or `"bool"` (TensorFlow's dtype names).
        rank: int. 1: `[batch]`, one value per row; 2: `[batch, n]`, a list per row of any
            width n, padded with `default` to the batch's widest row.
        default: str, int or bool. The value of a row that does not set it, and the padding of
            lists.
        meaning: str. One line: what the input is for.
        optional: bool. Whether only some variants of a signature declare it. Defaults to False.

    Example:
        >>> K.describe()
        '`k` [batch] int32: items to return for the row, at least 1'
    """

    name: str
    dtype: str
    rank: int
    default: Any
    meaning: str
    optional: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in _NUMPY_DTYPES:
            raise ValueError(
                f"`dtype` must be one of {sorted(_NUMPY_DTYPES)}, received {self.dtype!r}"
            )
        if self.rank not in (1, 2):
            raise ValueError(f"`rank` must be 1 or 2, received {self.rank!r}")

    @property
    def numpy_dtype(self) -> np.dtype:
        """The NumPy dtype of its arrays: object (of str or bytes) for strings."""
        return _NUMPY_DTYPES[self.dtype]

    @property
    def shape_text(self) -> str:
        return "[batch]" if self.rank == 1 else "[batch, n]"

    def describe(self) -> str:
        """`name` [shape] dtype: meaning, as error messages and docs show it."""
        return f"`{self.name}` {self.shape_text} {self.dtype}: {self.meaning}"

    def tensor_spec(self) -> tf.TensorSpec:
        """The tf.TensorSpec of a signature's input: any batch size, any list width."""
        import tensorflow as tf

        return tf.TensorSpec([None] * self.rank, tf.dtypes.as_dtype(self.dtype), self.name)

    def empty(self) -> np.ndarray:
        """An array of no rows (and, for lists, width 0)."""
        return np.zeros([0] * self.rank, self.numpy_dtype)

    def column(self, values: Union[Sequence, np.ndarray]) -> np.ndarray:
        """`values`, one per row (rank 1) or one list per row (rank 2, padded), as an array."""
        if self.rank == 1:
            return np.array(list(values), self.numpy_dtype).reshape(-1)
        rows = [list(v) for v in values]
        width = max((len(v) for v in rows), default=0)
        out = np.full([len(rows), width], self.default, self.numpy_dtype)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out


# ---- The inputs. The query side is the model's features (tfrec.features), sent raw: the graph
# looks the ids up and fits the recent events to `max_history`.
USER_ID = RequestInput(
    features.USER_ID, "string", 1, "", "the user; unknown users get the out-of-vocabulary embedding"
)
HISTORY_ITEM_IDS = RequestInput(
    features.HISTORY_ITEM_IDS,
    "string",
    2,
    "",
    'recent items, most recent first, "" padding; the towers read the latest `max_history`, '
    "exclusions and explanations all of them",
)
HISTORY_EVENT_TYPES = RequestInput(
    features.HISTORY_EVENT_TYPES,
    "string",
    2,
    "",
    f'the event type of each recent item, "" padding; the shape of `{features.HISTORY_ITEM_IDS}`',
)
HOUR_OF_DAY = RequestInput(features.HOUR_OF_DAY, "int32", 1, 0, "UTC hour of the request, 0 to 23")
DAY_OF_WEEK = RequestInput(
    features.DAY_OF_WEEK, "int32", 1, 0, "UTC weekday of the request, 0 to 6, Monday = 0"
)
# `k` and `exclude_recent` are per row too: TF Serving's batcher concatenates every input of a
# signature along dimension 0 and cannot batch scalars.
K = RequestInput("k", "int32", 1, 10, "items to return for the row, at least 1")
EXCLUDE_RECENT = RequestInput(
    "exclude_recent", "bool", 1, False, "drop every recent item of the row from its results"
)
ITEM_IDS = RequestInput("item_ids", "string", 2, "", f'the candidates `{RANK}` scores, "" padding')
QUERY_TEXT = RequestInput(
    "query_text",
    "string",
    1,
    "",
    'search text, "" for none; an input of the `<model>_text` variant only',
    optional=True,
)
# Never a served input: TF Serving requires every declared input in every request, so a new one
# would break existing clients. The in-memory module's `recommend_excluding` takes it.
EXCLUDE_ITEM_IDS = RequestInput(
    "exclude_item_ids",
    "string",
    2,
    "",
    'items not to show (e.g. out of stock), "" padding; in memory only '
    "(`recommend_excluding`), never a served input",
    optional=True,
)

INPUTS = (
    USER_ID,
    HISTORY_ITEM_IDS,
    HISTORY_EVENT_TYPES,
    HOUR_OF_DAY,
    DAY_OF_WEEK,
    K,
    EXCLUDE_RECENT,
    ITEM_IDS,
    QUERY_TEXT,
    EXCLUDE_ITEM_IDS,
)
BY_NAME = {i.name: i for i in INPUTS}
# The request context every signature reads, then what each adds.
CONTEXT = (USER_ID, HISTORY_ITEM_IDS, HISTORY_EVENT_TYPES, HOUR_OF_DAY, DAY_OF_WEEK)
STRING_INPUTS = frozenset(i.name for i in INPUTS if i.dtype == "string")
# Read pairwise, so they must have one shape.
HISTORY_PAIR = (HISTORY_ITEM_IDS.name, HISTORY_EVENT_TYPES.name)


def inputs_of(
    signature: str = RECOMMEND, with_text: bool = False, excluding: bool = False
) -> tuple[RequestInput, ...]:
    """The inputs of a signature, in its parameter order.

    Args:
        signature: str. `retrieve`, `rank` or `recommend`. Defaults to `recommend`.
        with_text: bool. The `<model>_text` variant: `retrieve` and `recommend` take
            `query_text`. Defaults to False.
        excluding: bool. `recommend_excluding`: `recommend` with `exclude_item_ids`.
            Defaults to False.
    """
    if signature not in SIGNATURES:
        raise ValueError(f"`signature` must be one of {SIGNATURES}, received {signature!r}")
    if excluding and signature != RECOMMEND:
        raise ValueError(f"`excluding` is a variant of `{RECOMMEND}` only, received {signature!r}")
    if signature == RANK:
        return (*CONTEXT, ITEM_IDS)
    found: tuple[RequestInput, ...] = (*CONTEXT, K, EXCLUDE_RECENT)
    if excluding:
        found += (EXCLUDE_ITEM_IDS,)
    return found + ((QUERY_TEXT,) if with_text else ())


def names_of(
    signature: str = RECOMMEND, with_text: bool = False, excluding: bool = False
) -> tuple[str, ...]:
    """The input names of a signature, in its parameter order (see `inputs_of`)."""
    return tuple(i.name for i in inputs_of(signature, with_text, excluding))


def tensor_specs(
    signature: str = RECOMMEND, with_text: bool = False, excluding: bool = False
) -> list[tf.TensorSpec]:
    """The tf.function input signature of a signature (see `inputs_of`), named by input."""
    return [i.tensor_spec() for i in inputs_of(signature, with_text, excluding)]


def empty_batch(
    signature: str = RECOMMEND, with_text: bool = False, excluding: bool = False
) -> dict[str, np.ndarray]:
    """A request of no rows: input name -> empty array of the input's dtype and rank."""
    return {i.name: i.empty() for i in inputs_of(signature, with_text, excluding)}


def describe(name: str) -> str:
    """The schema's line for input `name`, or "" when the schema does not know it."""
    found = BY_NAME.get(name)
    return "" if found is None else found.describe()


def time_features(timestamp: Union[np.ndarray, Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """`hour_of_day` and `day_of_week` of unix seconds, as int32 arrays (UTC, Monday = 0).

    Training examples and requests both read time through this, so they agree.
    """
    ts = np.asarray(timestamp)
    if ts.dtype.kind not in "iu":
        # Fractional seconds belong to the second they fall in, also before 1970.
        ts = np.floor(ts.astype(np.float64))
    ts = ts.astype(np.int64)
    hour = (ts // 3600) % 24
    day = (ts // _SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7
    return hour.astype(np.int32), day.astype(np.int32)


def _dtype_name(array: np.ndarray) -> str:
    if array.dtype.kind in "OSU":
        return "string"
    return array.dtype.name


def check(
    inputs: Mapping[str, Any],
    signature: str = RECOMMEND,
    with_text: bool = False,
    excluding: bool = False,
) -> None:
    """Raises RequestError naming the first input that does not fit the signature.

    A required input missing, an input the signature does not take, a dtype or rank other
    than the schema's, or a number of rows other than `user_id`'s is refused.

    Args:
        inputs: dict input name -> array-like. The request.
        signature, with_text, excluding: which signature, as in `inputs_of`.
    """
    expected = inputs_of(signature, with_text, excluding)
    names = [i.name for i in expected]
    listing = f"expected {sorted(names)}, received {sorted(inputs)}"
    for spec in expected:
        if spec.name not in inputs:
            raise RequestError(
                f"`inputs`: missing input `{spec.name}` of signature `{signature}`; {listing}; "
                f"{spec.describe()}"
            )
    for name in inputs:
        if name not in names:
            note = f"; {describe(name)}" if name in BY_NAME else ""
            raise RequestError(
                f"`inputs`: unknown input `{name}` for signature `{signature}`; {listing}{note}"
            )
    rows = None
    for spec in expected:
        array = np.asarray(inputs[spec.name])
        got = _dtype_name(array)
        # An empty list reads as float64: no value has the wrong dtype.
        if got != spec.dtype and not (array.size == 0 and array.dtype.kind == "f"):
            raise RequestError(
                f"`inputs.{spec.name}`: expected dtype {spec.dtype}, received {got}; "
                f"{spec.describe()}"
            )
        if array.ndim != spec.rank:
            raise RequestError(
                f"`inputs.{spec.name}`: expected shape {spec.shape_text}, received "
                f"{list(array.shape)}; {spec.describe()}"
            )
        if rows is None:
            rows = array.shape[0]
        elif array.shape[0] != rows:
            raise RequestError(
                f"`inputs.{spec.name}`: expected one row per `{USER_ID.name}` ({rows}), "
                f"received {array.shape[0]}"
            )
