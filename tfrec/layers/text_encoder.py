"""Text encoder: a small KerasNLP BERT over WordPiece ids, masked mean pooling, projection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras_nlp
import tensorflow as tf

from tfrec.layers import (
    hf_bert_backbone,  # noqa: F401  (registers the class imported presets name)
    masking,
    pooling,
)

# File names `keras_nlp.models.Backbone.from_preset` reads from a local preset directory.
_PRESET_CONFIG = "config.json"
_PRESET_WEIGHTS = "model.weights.h5"
_PRESET_METADATA = "metadata.json"


@tf.keras.utils.register_keras_serializable(package="tfrec")
class BertInputs(tf.keras.layers.Layer):
    """Builds the BERT input dict from zero-padded WordPiece ids (one segment, mask = ids != 0).

    A pretrained BERT saw every text as `[CLS] tokens [SEP]`; given their ids, this layer wraps
    each non-empty text that way inside the model, so the tf.data pipelines and the exported
    tokenizer stay plain WordPiece. An empty text stays all padding (it pools to zero).

    Args:
        cls_token_id: int or None. Id prepended to each non-empty text. None: no wrapping.
            Defaults to None.
        sep_token_id: int or None. Id appended after each non-empty text's last token; given
            together with `cls_token_id`. Defaults to None.

    Call args:
        inputs: int32 tensor `[batch, length]` of token ids, 0 = padding, real tokens first.

    Returns:
        Dict with `token_ids`, `segment_ids` (zeros) and `padding_mask`, each int32
        `[batch, length]`, or `[batch, length + 2]` when wrapping.
    """

    def __init__(self, cls_token_id: int | None = None, sep_token_id: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if (cls_token_id is None) != (sep_token_id is None):
            raise ValueError(
                "`cls_token_id` and `sep_token_id` must be given together, received "
                f"cls_token_id={cls_token_id!r}, sep_token_id={sep_token_id!r}"
            )
        for name, value in (("cls_token_id", cls_token_id), ("sep_token_id", sep_token_id)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"`{name}` must be an int >= 1 (0 is padding), received {value!r}")
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id

    def call(self, inputs: tf.Tensor) -> dict:
        token_ids = tf.cast(inputs, tf.int32)
        if self.cls_token_id is not None:
            real = tf.cast(tf.not_equal(token_ids, 0), tf.int32)
            length = tf.reduce_sum(real, axis=1)
            has_text = tf.minimum(length, 1)[:, tf.newaxis]
            padded = tf.pad(token_ids, [[0, 0], [1, 1]])
            cls = tf.one_hot(0, tf.shape(padded)[1], dtype=tf.int32)[tf.newaxis, :]
            sep = tf.one_hot(length + 1, tf.shape(padded)[1], dtype=tf.int32)
            token_ids = padded + has_text * (self.cls_token_id * cls + self.sep_token_id * sep)
        return {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": tf.cast(tf.not_equal(token_ids, 0), tf.int32),
        }

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "cls_token_id": self.cls_token_id,
            "sep_token_id": self.sep_token_id,
        }


def build_bert_backbone(
    vocabulary_size: int,
    max_sequence_length: int,
    num_layers: int = 2,
    num_heads: int = 2,
    hidden_dim: int = 64,
    intermediate_dim: int = 128,
    dropout: float = 0.1,
) -> keras_nlp.models.BertBackbone:
    """A randomly initialised BERT backbone sized for a product catalog (trained from scratch)."""
    if hidden_dim % num_heads:
        raise ValueError(
            f"`hidden_dim` must be divisible by `num_heads`, received hidden_dim={hidden_dim}, "
            f"num_heads={num_heads}"
        )
    return keras_nlp.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
        max_sequence_length=max_sequence_length,
    )


def save_backbone_preset(backbone: keras_nlp.models.Backbone, directory: os.PathLike | str) -> None:
    """Writes `backbone` as a local preset directory that `BertBackbone.from_preset` loads.

    keras-nlp 0.12.1's own `save_to_preset` refuses to run on Keras 2, but its `from_preset`
    works there; this writes the three files it reads: `config.json` (the serialized backbone,
    without build/compile config), `model.weights.h5` and `metadata.json` (with `keras_version`).

    Args:
        backbone: A keras-nlp backbone, e.g. `BertBackbone`.
        directory: Path of the preset directory (created if missing).
    """
    import tf_keras

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = tf.keras.saving.serialize_keras_object(backbone)
    config.pop("build_config", None)
    config.pop("compile_config", None)
    (directory / _PRESET_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    backbone.save_weights(str(directory / _PRESET_WEIGHTS))
    metadata = {
        "keras_version": tf_keras.__version__,
        "keras_nlp_version": keras_nlp.__version__,
        "parameter_count": int(backbone.count_params()),
    }
    (directory / _PRESET_METADATA).write_text(json.dumps(metadata, indent=2), encoding="utf-8")


def load_backbone_preset(
    directory: os.PathLike | str, vocabulary_size: int | None = None
) -> keras_nlp.models.BertBackbone:
    """Loads a BERT backbone (config and weights) from a local preset directory.

    Args:
        directory: Path of a directory written by `save_backbone_preset` (or any keras-nlp
            BERT preset directory holding `config.json`, `model.weights.h5`, `metadata.json`).
        vocabulary_size: int or None. When given, must equal the preset's vocabulary size: the
            token ids come from `FeatureSpec.wordpiece`, so a different vocabulary would map
            ids to the wrong embeddings.
    """
    directory = Path(directory)
    missing = [
        name
        for name in (_PRESET_CONFIG, _PRESET_WEIGHTS, _PRESET_METADATA)
        if not (directory / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"`preset` must be a local keras-nlp preset directory holding config.json, "
            f"model.weights.h5 and metadata.json; `{directory}` lacks {missing}"
        )
    backbone = keras_nlp.models.BertBackbone.from_preset(str(directory))
    if vocabulary_size is not None and backbone.vocabulary_size != vocabulary_size:
        raise ValueError(
            f"`preset` vocabulary must match the feature spec's WordPiece vocabulary: expected "
            f"{vocabulary_size} tokens, received {backbone.vocabulary_size} in `{directory}`"
        )
    return backbone


def build_text_encoder(
    backbone: keras_nlp.models.Backbone, output_dim: int, name: str = "text_encoder"
) -> tf.keras.Model:
    """Wraps a BERT backbone into a text encoder shared by the item and query towers.

    Item titles and search queries go through the same encoder (same weights), so a query and
    the items whose text matches it land close together, and an item never seen in training
    still gets an embedding from its text. Token states are mean-pooled over real tokens and
    projected without bias: a text with no token (an empty query) encodes to exactly zero.

    Args:
        backbone: A keras-nlp BERT backbone, from `build_bert_backbone` or
            `load_backbone_preset`.
        output_dim: int. Size of the text embedding.
        name: str. Model name. Defaults to "text_encoder".

    Returns:
        A Functional model: int32 token ids `[batch, length]` (0 = padding, any length up to
        the backbone's `max_sequence_length`) -> `[batch, output_dim]`.

    Example:
        >>> backbone = build_bert_backbone(vocabulary_size=100, max_sequence_length=16)
        >>> encoder = build_text_encoder(backbone, output_dim=32)
        >>> encoder(tf.constant([[5, 9, 0, 0]])).shape
        TensorShape([1, 32])
    """
    if not isinstance(output_dim, int) or output_dim < 1:
        raise ValueError(f"`output_dim` must be an int >= 1, received {output_dim!r}")
    # Only the token states are used: freezing the unused [CLS] pooler avoids weights without
    # gradients (and the warnings they cause) in every train step.
    if "pooled_dense" in [layer.name for layer in backbone.layers]:
        backbone.get_layer("pooled_dense").trainable = False
    token_ids = tf.keras.Input(shape=(None,), dtype=tf.int32, name="token_ids")
    states = backbone(BertInputs(name="bert_inputs")(token_ids))["sequence_output"]
    mask = masking.PaddingMask(0, name="token_mask")(token_ids)
    pooled = pooling.MaskedMeanPooling(name="token_pooling")([states, mask])
    encoded = tf.keras.layers.Dense(output_dim, use_bias=False, name="text_projection")(pooled)
    return tf.keras.Model(token_ids, encoded, name=name)
