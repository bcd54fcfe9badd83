"""Sentence embeddings from a pretrained BERT preset: mean-pooled token states, unit length."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfrec import presets
from tfrec.layers import pooling, text_encoder

# Texts per forward pass. Texts are sorted by length first, so a batch is about as wide as its
# longest text rather than `max_length`.
BATCH_SIZE = 64


class SentenceEncoder:
    """Encodes free text with a frozen pretrained BERT exactly as tfrec's text towers read it.

    The preset's own WordPiece tokenizer (`keras_nlp.models.BertTokenizer.from_preset`) cuts
    each text to `max_length - 2` tokens; `text_encoder.BertInputs` wraps it as
    `[CLS] tokens [SEP]`; the backbone runs in inference mode and its token states are
    mean-pooled over the real tokens (`pooling.MaskedMeanPooling`), which is how
    sentence-transformers pools all-MiniLM-L6-v2 and how `PretrainedTextEncoder` fills its
    frozen cache. The vectors are then scaled to unit length, so dot products are cosines.

    Args:
        preset: str or path. A keras-nlp BERT preset directory, or "default" (the
            all-MiniLM-L6-v2 preset `tfrec text fetch-default` writes). Defaults to "default".
        max_length: int in [3, the backbone's max_sequence_length]. Tokens per text, [CLS] and
            [SEP] included. Defaults to 128.

    Example:
        >>> encoder = SentenceEncoder("default", max_length=128)
        >>> encoder.encode(["guitar strings", "a strap"]).shape
        (2, 384)
    """

    def __init__(self, preset: os.PathLike | str = presets.DEFAULT, max_length: int = 128):
        import keras_nlp

        directory = presets.resolve(preset)
        vocabulary = presets.vocabulary(directory)
        self.backbone = text_encoder.load_backbone_preset(directory, len(vocabulary.tokens))
        if (
            isinstance(max_length, bool)
            or not isinstance(max_length, int)
            or not 3 <= max_length <= self.backbone.max_sequence_length
        ):
            raise ValueError(
                f"`max_length` must be an int in [3, {self.backbone.max_sequence_length}], "
                f"received {max_length!r}"
            )
        self.preset = str(directory)
        self.max_length = max_length
        self.tokenizer = keras_nlp.models.BertTokenizer.from_preset(str(directory))
        self.bert_inputs = text_encoder.BertInputs(vocabulary.cls_token_id, vocabulary.sep_token_id)
        self.pooling = pooling.MaskedMeanPooling()
        self._embed = tf.function(
            self._forward, input_signature=[tf.TensorSpec([None, None], tf.int32)]
        )

    def _forward(self, token_ids: tf.Tensor) -> tf.Tensor:
        bert = self.bert_inputs(token_ids)
        states = self.backbone(bert, training=False)["sequence_output"]
        return self.pooling([states, bert["padding_mask"]])

    def token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each text's WordPiece ids before cutting (int32 arrays, no [CLS]/[SEP])."""
        if len(texts) == 0:
            return []
        ragged = self.tokenizer(tf.constant([str(t) for t in texts]))
        return [np.asarray(row, np.int32) for row in ragged.to_list()]

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = BATCH_SIZE,
        progress: bool = False,
        desc: str = "embed",
    ) -> np.ndarray:
        """Unit-length sentence vectors.

        Args:
            texts: sequence of str [n].
            batch_size: int. Texts per forward pass. Defaults to BATCH_SIZE.
            progress: bool. Show a tqdm bar over the texts. Defaults to False.
            desc: str. The bar's label.

        Returns:
            float32 [n, hidden_dim]; an empty text gives a zero row.
        """
        import tqdm

        ids = [row[: self.max_length - 2] for row in self.token_ids(texts)]
        out = np.zeros([len(ids), self.backbone.hidden_dim], np.float32)
        order = np.argsort([len(row) for row in ids], kind="stable")
        bar = tqdm.tqdm(total=len(ids), desc=desc, unit="text", disable=not progress)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(1, max(len(ids[r]) for r in rows))
            batch = np.zeros([len(rows), width], np.int32)
            for i, r in enumerate(rows):
                batch[i, : len(ids[r])] = ids[r]
            out[rows] = self._embed(tf.constant(batch)).numpy()
            bar.update(len(rows))
        bar.close()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)
