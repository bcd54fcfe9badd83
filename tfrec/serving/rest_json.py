"""TF Serving's REST JSON conventions: row/columnar requests, `{"b64": ...}` strings, replies."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import tensorflow as tf

from tfrec import request_schema
from tfrec.serving import limits, status

if TYPE_CHECKING:
    from tensorflow.core.protobuf import meta_graph_pb2


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"]


def _strings(value: Any, field: str) -> tuple[Any, tuple[int, ...]]:
    """Nested JSON of strings -> (nested bytes, shape); rejects ragged or non-string values."""
    if isinstance(value, list):
        parts = [_strings(v, f"{field}[{i}]") for i, v in enumerate(value)]
        shapes = {p[1] for p in parts}
        if len(shapes) > 1:
            raise status.invalid(
                f"`{field}`: expected lists of equal length, received shapes {sorted(shapes)}"
            )
        inner = shapes.pop() if shapes else ()
        return [p[0] for p in parts], (len(value), *inner)
    if isinstance(value, str):
        return value.encode("utf-8"), ()
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True), ()
        except (ValueError, TypeError) as e:  # binascii.Error, and non-ASCII text
            raise status.invalid(f"`{field}`: invalid base64 in `b64`: {e}") from e
    raise status.invalid(f'`{field}`: expected a string or {{"b64": ...}}, received {value!r}')


def json_to_array(value: Any, dtype: tf.DType, field: str) -> np.ndarray:
    """A JSON value as an array of the signature's dtype; INVALID_ARGUMENT naming `field`."""
    if dtype == tf.string:
        nested, shape = _strings(value, field)
        if not shape:
            out = np.empty((), dtype=object)
            out[()] = nested
            return out
        return _fill(nested, shape)
    try:
        array = np.asarray(value)
    except ValueError as e:
        raise status.invalid(f"`{field}`: expected lists of equal length: {e}") from e
    kind = array.dtype.kind
    allowed = {"b": "b", "i": "iu", "u": "iu", "f": "iuf", "c": "iufc"}[
        dtype.as_numpy_dtype().dtype.kind
    ]
    if array.size and kind not in allowed:
        received = (
            "strings"
            if kind in "US"
            else "ragged or mixed lists"
            if kind == "O"
            else array.dtype.name
        )
        raise status.invalid(f"`{field}`: expected {dtype.name} values, received {received}")
    target = np.dtype(dtype.as_numpy_dtype)
    if array.size and target.kind in "iu":
        # astype would wrap silently (2**32 + 10 becomes 10 as int32).
        info = np.iinfo(target)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise status.invalid(
                f"`{field}`: expected {dtype.name} values in [{info.min}, {info.max}], received "
                f"{low if low < info.min else high}"
            )
    return array.astype(target)


def decode_body(raw: bytes) -> Any:
    """The JSON of a request body; malformed or too deeply nested JSON is INVALID_ARGUMENT."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise status.invalid(f"request body: malformed JSON: {e}") from e
    except RecursionError as e:
        raise status.invalid("request body: malformed JSON: nested too deeply") from e


def _fill(nested: Any, shape: tuple[int, ...]) -> np.ndarray:
    # Filled through a flat view: np.array(nested, dtype=object) would keep ragged lists.
    holder = np.empty(shape, dtype=object)
    flat = holder.reshape(-1)
    flat[:] = list(_flatten(nested))
    return holder


def _flatten(nested: Any) -> Iterator[Any]:
    if isinstance(nested, list):
        for v in nested:
            yield from _flatten(v)
    else:
        yield nested


def parse_predict(
    body: Any,
    signature_def: meta_graph_pb2.SignatureDef,
    request_limits: Optional[limits.RequestLimits] = None,
) -> tuple[dict, bool]:
    """Inputs of a `:predict` body; True when it used the row (`instances`) format.

    With `request_limits`, each input's declared shape (its JSON list lengths) is checked
    before it is converted, and its strings after.
    """
    try:
        return _parse_predict(body, signature_def, request_limits)
    except RecursionError as e:  # lists nested past Python's stack (not past MAX_JSON_DEPTH)
        raise status.invalid("request body: lists nested too deeply") from e


def _parse_predict(
    body: Any,
    signature_def: meta_graph_pb2.SignatureDef,
    request_limits: Optional[limits.RequestLimits],
) -> tuple[dict, bool]:
    if not isinstance(body, dict):
        raise status.invalid(
            f"request body: expected a JSON object, received {type(body).__name__}"
        )
    if ("instances" in body) == ("inputs" in body):
        raise status.invalid("request body: expected exactly one of `instances` or `inputs`")
    unknown = sorted(set(body) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise status.invalid(f"request body: unknown field `{unknown[0]}`")
    dtypes = {k: tf.dtypes.as_dtype(v.dtype) for k, v in signature_def.inputs.items()}
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise status.invalid("`instances`: expected a non-empty list")
        if all(isinstance(r, dict) and not _is_b64(r) for r in rows):
            keys = set(rows[0])
            for i, row in enumerate(rows):
                if set(row) != keys:
                    raise status.invalid(
                        f"`instances[{i}]`: expected keys {sorted(keys)}, received {sorted(row)}"
                    )
            columns = {k: [row[k] for row in rows] for k in keys}
            field = "instances[*].{}"
        else:
            columns = {_single_input(dtypes, "instances"): rows}
            field = "instances"
        return _convert(columns, dtypes, field, request_limits), True
    value = body["inputs"]
    if isinstance(value, dict) and not _is_b64(value):
        return _convert(value, dtypes, "inputs.{}", request_limits), False
    columns = {_single_input(dtypes, "inputs"): value}
    return _convert(columns, dtypes, "inputs", request_limits), False


def _single_input(dtypes: Mapping, field: str) -> str:
    if len(dtypes) != 1:
        raise status.invalid(
            f"`{field}`: the signature has inputs {sorted(dtypes)}, so values must be objects "
            "naming them"
        )
    return next(iter(dtypes))


def _convert(
    columns: Mapping,
    dtypes: Mapping,
    field: str,
    request_limits: Optional[limits.RequestLimits] = None,
) -> dict:
    out = {}
    for name, value in columns.items():
        where = field.format(name)
        if request_limits is not None:
            request_limits.check_shape(where, limits.json_shape(value, where))
        dtype = dtypes.get(name) or _undeclared_dtype(name, value)
        out[name] = json_to_array(value, dtype, where)
        if request_limits is not None and out[name].dtype.kind == "O":
            longest = max((len(v) for v in out[name].reshape(-1)), default=0)
            request_limits.check_string_bytes(where, longest)
    return out


def _undeclared_dtype(name: str, value: Any) -> tf.DType:
    """The dtype an input the signature does not declare is read with, so that check_inputs
    reports it as unknown (as over gRPC) rather than this failing on its values: tfrec's request
    schema's for its inputs (one sent to a model variant without it), else guessed."""
    stringy = _looks_stringy(value)
    known = request_schema.BY_NAME.get(name)
    if known is not None and (known.name in request_schema.STRING_INPUTS) == stringy:
        return tf.dtypes.as_dtype(known.dtype)
    return tf.string if stringy else tf.float32


def _looks_stringy(value: Any) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, str) or _is_b64(value)


def array_to_json(array: np.ndarray, name: str) -> Any:
    """An output array as JSON; strings are UTF-8 text, or `{"b64"}` for `*_bytes` or binary."""
    if array.dtype.kind not in ("O", "S", "U"):
        # Python's json writes NaN and Infinity bare, as TF Serving does.
        return array.tolist()
    binary = name.endswith("_bytes")
    return _walk(array.tolist(), binary)


def _walk(value: Any, binary: bool) -> Any:
    if isinstance(value, list):
        return [_walk(v, binary) for v in value]
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not binary:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(value).decode("ascii")}


def format_predict(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    """`{"predictions": [...]}` for row requests, `{"outputs": ...}` for columnar ones."""
    if not row_format:
        if len(outputs) == 1:
            name, array = next(iter(outputs.items()))
            return {"outputs": array_to_json(array, name)}
        return {"outputs": {k: array_to_json(v, k) for k, v in outputs.items()}}
    sizes = {k: (v.shape[0] if v.ndim else None) for k, v in outputs.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise status.invalid(
            f"`instances`: outputs need one shared batch size for the row format, received "
            f"{sizes}; use the columnar `inputs` format"
        )
    if len(outputs) == 1:
        name, array = next(iter(outputs.items()))
        return {"predictions": array_to_json(array, name)}
    columns = {k: array_to_json(v, k) for k, v in outputs.items()}
    n = next(iter(sizes.values()))
    assert n is not None  # sizes holds no None: checked above
    return {"predictions": [{k: col[i] for k, col in columns.items()} for i in range(n)]}


def json_to_output(value: Any, dtype: Optional[tf.DType]) -> np.ndarray:
    """A reply value back to NumPy (clients): strings and `{"b64"}` become bytes."""
    if dtype is None:  # undeclared: infer from the JSON
        return (
            json_to_array(value, tf.string, "outputs")
            if _looks_stringy(value)
            else np.asarray(value)
        )
    if dtype == tf.string:
        return json_to_array(value, tf.string, "outputs")
    return np.asarray(value, dtype=dtype.as_numpy_dtype)
