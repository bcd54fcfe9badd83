"""A pretrained BERT text encoder whose frozen part is computed once per catalog item.

Design. The backbone is split at layer `L = num_layers - trainable_layers`: the embeddings and
the lower `L` transformer layers are frozen (always run with `training=False`, so they are a
pure function of the text); the top `trainable_layers` layers, if any, train. What the frozen
part computes for an item is kept in a non-trainable per-item table, `item_cache`, one row per
item of the training vocabulary (row 0 is the OOV bucket and is never cached):

- `frozen` (`trainable_layers=0`): the whole backbone is frozen, so a row holds the item's final
  sentence vector (token states mean-pooled over `[CLS] tokens [SEP]`, as sentence-transformers
  pools); only the projection after it trains.
- `finetune` (`trainable_layers=N`): a row holds the token states after layer `L`; the top `N`
  layers run on them at every step, then pooling and the projection.

A text with no cached row (an item id outside the training vocabulary: a new item at export
time, `tfrec.exporting.add_items`; a row not filled yet; any search query) goes through the
live frozen part instead, so every text can always be encoded. Rows are filled either up front
with `fill` (the catalog's items, before training) or during training: a training step writes
the rows it had to compute live, so each item's frozen part runs once in the first epoch and
is read from the table afterwards. Inference never writes to the table. The table is an
ordinary (non-trainable) weight: checkpoints and SavedModels carry it, and a restored model
reads the same rows it trained with.

Search queries are never cached, so with `query_student_layers > 0` they go through a shallow
student of the frozen part instead (`tfrec.layers.query_student`), in training as in serving:
the towers learn on the query vectors the server will compute. The student is frozen here; it
is distilled before the towers train (`tfrec.training.query_student`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec.layers import pooling, query_student, text_encoder


@tf.keras.utils.register_keras_serializable(package="tfrec")
class PretrainedTextEncoder(tf.keras.layers.Layer):
    """Item and query text -> embedding, through a pretrained BERT with a cached frozen part.

    Shared by the candidate tower (which passes item ids, so cached items skip the frozen
    part) and the query tower (search text, always live). Texts use the preset's WordPiece ids
    (`FeatureSpec.wordpiece` holds its vocabulary); `[CLS]`/`[SEP]` are added here.

    Args:
        backbone: keras-nlp BERT backbone, usually
            `tfrec.layers.text_encoder.load_backbone_preset` of a pretrained preset.
        output_dim: int. Size of the text embedding.
        items: sequence of str. Item ids with a cache row (`FeatureSpec.items`).
        text_length: int. Tokens per item text (`FeatureSpec.text_length`).
        cls_token_id: int. Id of "[CLS]" in the backbone's vocabulary.
        sep_token_id: int. Id of "[SEP]" in the backbone's vocabulary.
        trainable_layers: int in [0, backbone.num_layers]. Top transformer layers that train;
            0 freezes the backbone. Defaults to 0.
        query_student_layers: int in [0, num_layers - trainable_layers]. Transformer layers of
            the student that encodes search queries in place of the frozen part; 0: queries
            go through the frozen part itself. Defaults to 0.

    Call args:
        inputs: int32 token ids `[batch, length]` (0 = padding), or a dict with `token_ids`
            `[batch, text_length]` and `item_ids` tf.string `[batch]` (cache lookup).
        training: bool or None. True fills the cache rows computed live.

    Returns:
        `[batch, output_dim]`; exactly zero for a text with no token.

    Example:
        >>> encoder = PretrainedTextEncoder(backbone, 32, ["i1", "i2"], 12, 101, 102)
        >>> encoder({"token_ids": ids, "item_ids": tf.constant(["i1", "new"])}).shape
        TensorShape([2, 32])
    """

    # The candidate tower passes item ids to a text encoder that declares it reads them.
    reads_item_ids = True

    def __init__(
        self,
        backbone: tf.keras.Model,
        output_dim: int,
        items: Sequence[str],
        text_length: int,
        cls_token_id: int,
        sep_token_id: int,
        trainable_layers: int = 0,
        query_student_layers: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(output_dim, int) or output_dim < 1:
            raise ValueError(f"`output_dim` must be an int >= 1, received {output_dim!r}")
        if not isinstance(text_length, int) or text_length < 1:
            raise ValueError(f"`text_length` must be an int >= 1, received {text_length!r}")
        num_layers = len(backbone.transformer_layers)
        if not isinstance(trainable_layers, int) or not 0 <= trainable_layers <= num_layers:
            raise ValueError(
                f"`trainable_layers` must be an int in [0, {num_layers}] (the backbone's "
                f"transformer layers), received {trainable_layers!r}"
            )
        if text_length + 2 > backbone.max_sequence_length:
            raise ValueError(
                f"`text_length` + 2 ([CLS] and [SEP]) must be at most the backbone's "
                f"max_sequence_length {backbone.max_sequence_length}, received {text_length}"
            )
        self.backbone = backbone
        self.output_dim = output_dim
        self.items = list(items)
        self.text_length = text_length
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.trainable_layers = trainable_layers
        self.split = num_layers - trainable_layers
        if (
            isinstance(query_student_layers, bool)
            or not isinstance(query_student_layers, int)
            or not 0 <= query_student_layers <= self.split
        ):
            raise ValueError(
                f"`query_student_layers` must be an int in [0, {self.split}] (the frozen "
                f"layers it replaces), received {query_student_layers!r}"
            )
        self.query_student_layers = query_student_layers
        self._freeze(backbone)
        self.student: Optional[query_student.QueryStudent] = None
        if query_student_layers:
            self.student_picks = query_student.teacher_layers(self.split, query_student_layers)
            self.student = query_student.QueryStudent(
                [backbone.transformer_layers[i].get_config() for i in self.student_picks],
                name="query_student",
            )
            # Distilled on its own (`tfrec.training.query_student`), never by the towers' loss.
            self.student.trainable = False
        self.bert_inputs = text_encoder.BertInputs(cls_token_id, sep_token_id, name="bert_inputs")
        self.item_lookup = tf.keras.layers.StringLookup(
            vocabulary=self.items, num_oov_indices=1, name="text_cache_lookup"
        )
        self.token_pooling = pooling.MaskedMeanPooling(name="token_pooling")
        self.projection = tf.keras.layers.Dense(output_dim, use_bias=False, name="text_projection")

    def _freeze(self, backbone: tf.keras.Model) -> None:
        frozen = [
            backbone.token_embedding,
            backbone.position_embedding,
            backbone.segment_embedding,
            backbone.embeddings_layer_norm,
            backbone.get_layer("pooled_dense"),  # [CLS] pooler: unused, tokens are pooled
            *backbone.transformer_layers[: self.split],
        ]
        if self.trainable_layers == 0:
            backbone.trainable = False
        for layer in frozen:
            layer.trainable = False

    def build(self, input_shape):
        hidden = self.backbone.hidden_dim
        if self.trainable_layers:
            row = [self.text_length + 2, hidden]  # token states after the frozen layers
        else:
            row = [hidden]  # the pooled sentence vector
        # float32 whatever the policy (no autocast): rows are written once and read many times.
        self.item_cache = self.add_weight(
            name="item_cache",
            shape=[len(self.items) + 1, *row],
            dtype=tf.float32,
            initializer="zeros",
            trainable=False,
            experimental_autocast=False,
        )
        self.item_cached = self.add_weight(
            name="item_cached",
            shape=[len(self.items) + 1],
            dtype=tf.int32,
            initializer="zeros",
            trainable=False,
            experimental_autocast=False,
        )
        if self.student is not None and not self.student.built:
            self.student.build(tf.TensorShape([None, None, hidden]))
            # A restored model overwrites these with the distilled weights.
            self.student.copy_teacher(self.backbone, self.student_picks)
        super().build(input_shape)

    def _frozen_part(self, bert: dict, student: bool = False) -> tf.Tensor:
        """Embeddings and the lower layers (inference mode); pooled too when all are frozen.

        Runs on the columns up to the longest text only (search queries and titles are mostly
        padding): padding is masked out of attention and pooling, so the real tokens' states
        are unchanged; token states come back padded with zeros to the full width.

        Args:
            bert: dict of `BertInputs` outputs.
            student: bool. Run the query student in place of the lower layers (it must exist).
        """
        width = tf.shape(bert["token_ids"])[1]
        longest = tf.reduce_max(tf.reduce_sum(bert["padding_mask"], axis=1))
        longest = tf.maximum(longest, 1)
        bert = tf.nest.map_structure(lambda t: t[:, :longest], bert)
        b = self.backbone
        tokens = b.token_embedding(bert["token_ids"])
        x = b.embeddings_add(
            (tokens, b.position_embedding(tokens), b.segment_embedding(bert["segment_ids"]))
        )
        x = b.embeddings_layer_norm(x)
        if student:
            assert self.student is not None, "checked by the callers"
            x = self.student(x, padding_mask=bert["padding_mask"], training=False)
        else:
            for layer in b.transformer_layers[: self.split]:
                x = layer(x, padding_mask=bert["padding_mask"], training=False)
        if self.trainable_layers:
            return tf.pad(x, [[0, 0], [0, width - longest], [0, 0]])
        return self.token_pooling([x, bert["padding_mask"]])

    def frozen_outputs(
        self, token_ids: tf.Tensor, student: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """What the frozen part (or the query student) makes of texts, for distillation.

        Args:
            token_ids: int32 `[batch, length]` WordPiece ids, 0 = padding, no [CLS]/[SEP].
            student: bool. The query student's outputs instead of the frozen layers'.

        Returns:
            `(outputs, padding_mask)`: outputs `[batch, hidden]` pooled (mode frozen) or
            `[batch, length + 2, hidden]` token states (mode finetune); the int32 mask
            `[batch, length + 2]` of the wrapped texts.
        """
        if student and self.student is None:
            raise ValueError("this encoder has no query student (query_student_layers=0)")
        bert = self.bert_inputs(token_ids)
        return self._frozen_part(bert, student=student), bert["padding_mask"]

    def _trainable_part(self, x: tf.Tensor, padding_mask: tf.Tensor, training) -> tf.Tensor:
        if not self.trainable_layers:
            return x
        b = self.backbone
        # As in `_frozen_part`: the trailing all-padding columns change nothing, skip them.
        longest = tf.maximum(tf.reduce_max(tf.reduce_sum(padding_mask, axis=1)), 1)
        x, padding_mask = x[:, :longest], padding_mask[:, :longest]
        x = b.embeddings_dropout(x, training=training) if self.split == 0 else x
        for layer in b.transformer_layers[self.split :]:
            x = layer(x, padding_mask=padding_mask, training=training)
        return self.token_pooling([x, padding_mask])

    def call(self, inputs, training=None) -> tf.Tensor:
        item_ids = None
        if isinstance(inputs, dict):
            item_ids = inputs.get("item_ids")
            inputs = inputs["token_ids"]
        bert = self.bert_inputs(inputs)
        needed = tf.reduce_any(tf.not_equal(bert["padding_mask"], 0), axis=1)
        if item_ids is not None:
            rows = self.item_lookup(item_ids)
            cached = tf.gather(self.item_cached, rows) > 0
            # Rows not cached read zeros (empty texts stay exactly zero), whatever the table holds.
            keep = tf.reshape(
                tf.cast(cached, tf.float32), [-1] + [1] * (self.item_cache.shape.rank - 1)
            )
            base = tf.gather(self.item_cache, rows) * keep
            needed = tf.logical_and(needed, tf.logical_not(cached))
        # Only the texts without a cached row run the frozen part: most of a training batch
        # after the first epoch, and most search queries (empty), run nothing.
        live_rows = tf.where(needed)[:, 0]

        def run_frozen() -> tf.Tensor:
            # Queries (no item ids) take the student when there is one; item texts never do.
            live = self._frozen_part(
                tf.nest.map_structure(lambda t: tf.gather(t, live_rows), bert),
                student=item_ids is None and self.student is not None,
            )
            return tf.cast(live, tf.float32)

        def nothing() -> tf.Tensor:
            hidden = self.backbone.hidden_dim
            width = tf.shape(bert["token_ids"])[1]
            shape = [0, width, hidden] if self.trainable_layers else [0, hidden]
            return tf.zeros(shape, tf.float32)

        # A request without search text (most recommendation traffic) still runs every op of
        # the frozen layers on zero rows, a few ms at batch 1: skip them.
        live = tf.cond(tf.size(live_rows) > 0, run_frozen, nothing)
        if item_ids is None:
            base = tf.zeros(tf.concat([tf.shape(needed), tf.shape(live)[1:]], 0), tf.float32)
        elif training is True:
            self._write(tf.gather(rows, live_rows), live)
        x = tf.tensor_scatter_nd_update(base, live_rows[:, tf.newaxis], live)
        x = tf.cast(x, self.compute_dtype)
        return self.projection(self._trainable_part(x, bert["padding_mask"], training))

    def _write(self, rows: tf.Tensor, values: tf.Tensor) -> None:
        keep = rows > 0  # row 0: the OOV bucket, shared by every unknown item
        rows = tf.boolean_mask(rows, keep)[:, tf.newaxis]
        self.item_cache.scatter_nd_update(rows, tf.boolean_mask(values, keep))
        self.item_cached.scatter_nd_update(rows, tf.ones_like(rows[:, 0], tf.int32))

    def fill(self, item_ids, token_ids, batch_size: int = 256) -> int:
        """Computes and stores the frozen part of the given items (eager); returns rows written.

        Args:
            item_ids: [n] str. Item ids; those outside `items` are skipped.
            token_ids: [n, text_length] int. Their WordPiece ids (`FeatureSpec` tokenizer).
            batch_size: int. Items per forward pass. Defaults to 256.
        """
        item_ids = np.asarray(item_ids, dtype=object).astype(str)
        token_ids = np.asarray(token_ids, dtype=np.int32)
        if token_ids.shape != (len(item_ids), self.text_length):
            raise ValueError(
                f"`token_ids` must have shape [{len(item_ids)}, {self.text_length}] (one row per "
                f"item id), received {list(token_ids.shape)}"
            )
        if not self.built:
            self.build(tf.TensorShape([None, self.text_length]))
        written = 0
        for start in range(0, len(item_ids), batch_size):
            rows = self.item_lookup(tf.constant(item_ids[start : start + batch_size]))
            bert = self.bert_inputs(tf.constant(token_ids[start : start + batch_size]))
            values = tf.cast(self._frozen_part(bert), tf.float32)
            self._write(rows, values)
            written += int(tf.reduce_sum(tf.cast(rows > 0, tf.int32)))
        return written

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["token_ids"]
        return tf.TensorShape(input_shape)[:1].concatenate([self.output_dim])

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "backbone": tf.keras.layers.serialize(self.backbone),
            "output_dim": self.output_dim,
            "items": list(self.items),
            "text_length": self.text_length,
            "cls_token_id": self.cls_token_id,
            "sep_token_id": self.sep_token_id,
            "trainable_layers": self.trainable_layers,
            "query_student_layers": self.query_student_layers,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["backbone"] = tf.keras.layers.deserialize(config["backbone"])
        return cls(**config)
