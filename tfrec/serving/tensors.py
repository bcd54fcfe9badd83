"""Checks request tensors against a SignatureDef and converts them to and from TensorProtos."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from tfrec import request_schema
from tfrec.serving import status


def np_to_tf_dtype(array: np.ndarray) -> tf.DType:
    """The TF dtype of a request array; str, bytes and object arrays are `tf.string`."""
    if array.dtype.kind in ("O", "S", "U"):
        return tf.string
    return tf.as_dtype(array.dtype)


def to_string_array(value) -> np.ndarray:
    """An object array of bytes (TF's representation of `tf.string`), encoding str as UTF-8."""
    array = np.asarray(value, dtype=object)
    flat = [v.encode("utf-8") if isinstance(v, str) else v for v in array.reshape(-1)]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(array.shape)


def shape_of(tensor_info) -> list | None:
    """A SignatureDef tensor's static shape as a list (-1 = any), or None for unknown rank."""
    shape = tensor_info.tensor_shape
    if shape.unknown_rank:
        return None
    return [d.size for d in shape.dim]


def _shape_compatible(expected: list | None, received: tuple) -> bool:
    if expected is None:
        return True
    if len(expected) != len(received):
        return False
    return all(e < 0 or e == r for e, r in zip(expected, received, strict=True))


def _fmt_shape(shape: list | None) -> str:
    if shape is None:
        return "<unknown rank>"
    return "[" + ", ".join("None" if d < 0 else str(d) for d in shape) + "]"


def _schema_note(name: str, signature_def) -> str:
    """The request schema's line for an input of a tfrec signature, after "; ", else "".

    A signature is tfrec's when every input it declares is a request-schema input of the
    schema's dtype and rank; other models' inputs get no note, whatever their names.
    """
    for declared, info in signature_def.inputs.items():
        known = request_schema.BY_NAME.get(declared)
        shape = shape_of(info)
        if (
            known is None
            or tf.dtypes.as_dtype(info.dtype).name != known.dtype
            or (shape is not None and len(shape) != known.rank)
        ):
            return ""
    line = request_schema.describe(name)
    return f"; {line}" if line else ""


def check_inputs(signature_name: str, signature_def, inputs: Mapping[str, np.ndarray]) -> None:
    """Raises INVALID_ARGUMENT naming the field when `inputs` do not fit the signature.

    The SignatureDef is the authority (any SavedModel can be served, and an older export may
    declare other inputs); for tfrec's signatures, built from `tfrec.request_schema`, the
    message adds the schema's line for the input.

    Args:
        signature_name: str. Used in messages.
        signature_def: SignatureDef proto. Declares input names, dtypes and shapes.
        inputs: dict of str to np.ndarray. The request.
    """
    expected = dict(signature_def.inputs)
    missing = sorted(set(expected) - set(inputs))
    if missing:
        raise status.invalid(
            f"`inputs`: missing input `{missing[0]}` of signature `{signature_name}`; expected "
            f"{sorted(expected)}, received {sorted(inputs)}"
            + _schema_note(missing[0], signature_def)
        )
    extra = sorted(set(inputs) - set(expected))
    if extra:
        raise status.invalid(
            f"`inputs`: unknown input `{extra[0]}` for signature `{signature_name}`; expected "
            f"{sorted(expected)}, received {sorted(inputs)}" + _schema_note(extra[0], signature_def)
        )
    for name, info in expected.items():
        array = inputs[name]
        want = tf.dtypes.as_dtype(info.dtype)
        got = np_to_tf_dtype(array)
        if got != want:
            raise status.invalid(
                f"`inputs.{name}`: expected dtype {want.name}, received {got.name}"
                + _schema_note(name, signature_def)
            )
        shape = shape_of(info)
        if not _shape_compatible(shape, array.shape):
            raise status.invalid(
                f"`inputs.{name}`: expected shape {_fmt_shape(shape)}, received "
                f"{list(array.shape)}" + _schema_note(name, signature_def)
            )


def check_output_filter(signature_name: str, signature_def, output_filter) -> list[str]:
    """The output names to return: `output_filter` if given (each must exist), else all."""
    names = list(signature_def.outputs)
    if not output_filter:
        return sorted(names)
    for name in output_filter:
        if name not in signature_def.outputs:
            raise status.invalid(
                f"`output_filter`: unknown output `{name}` of signature `{signature_name}`; "
                f"expected one of {sorted(names)}"
            )
    return list(dict.fromkeys(output_filter))


def from_proto(name: str, proto, request_limits=None) -> np.ndarray:
    """A request TensorProto as a NumPy array; malformed protos are INVALID_ARGUMENT.

    Args:
        name: str. The input name, used in messages.
        proto: TensorProto.
        request_limits: RequestLimits or None. Checked on the declared dims and string lengths
            before the array is built: a few bytes can declare a huge shape that
            `tf.make_ndarray` fills by repeating the last value.
    """
    if request_limits is not None:
        field = f"inputs.{name}"
        if proto.tensor_shape.unknown_rank:
            raise status.invalid(f"`{field}`: expected a known shape, received unknown rank")
        request_limits.check_shape(field, [d.size for d in proto.tensor_shape.dim])
        for value in proto.string_val:
            request_limits.check_string_bytes(field, len(value))
    try:
        return tf.make_ndarray(proto)
    except Exception as e:  # noqa: BLE001 (tf raises several types for malformed protos)
        raise status.invalid(f"`inputs.{name}`: not a valid TensorProto: {e}") from e


def to_proto(array: np.ndarray, dtype=None):
    """A NumPy array as a TensorProto (strings as bytes)."""
    if array.dtype.kind in ("O", "U", "S"):
        return tf.make_tensor_proto(to_string_array(array), dtype=tf.string)
    return tf.make_tensor_proto(array, dtype=dtype)
