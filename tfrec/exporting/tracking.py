"""What a SavedModel of Keras towers must track: their variables and tables, not the models."""

from __future__ import annotations

import warnings

import tensorflow as tf


class Untracked:
    """Holds a Keras model without making it a SavedModel dependency (see `state_of`)."""

    def __init__(self, value):
        self.value = value


def state_of(*objects) -> list:
    """Every variable and resource (lookup table) of `objects`, for SavedModel tracking.

    Tracking the Keras models themselves would make `tf.saved_model.save` trace every layer's
    call for Keras's own reloading (about 20 s for the tiny model); the signatures only need
    the variables and tables they capture.
    """
    kinds = (tf.Variable, tf.saved_model.experimental.TrackableResource)
    found, seen = [], set()
    with warnings.catch_warnings():
        # Walking attributes reads Keras's deprecated `updates` properties, which warn.
        warnings.simplefilter("ignore", UserWarning)
        for obj in objects:
            if obj is None:
                continue
            for value in obj._flatten(predicate=lambda v: isinstance(v, kinds)):
                if id(value) not in seen:
                    seen.add(id(value))
                    found.append(value)
    return found
