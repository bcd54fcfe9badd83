"""The feature spec: input names, dtypes, shapes and vocabularies, shared by the tf.data
pipelines, the towers and the serving signatures, so training and serving cannot drift."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from tfrec import config as config_lib
from tfrec import errors

# ---- Query-side inputs (what a request carries). Shapes are per example (unbatched).
USER_ID = "user_id"  # tf.string []
HISTORY_ITEM_IDS = "history_item_ids"  # tf.string [max_history]; most recent first, "" padding
HISTORY_EVENT_TYPES = "history_event_types"  # tf.string [max_history]; "" padding
HOUR_OF_DAY = "hour_of_day"  # tf.int32 [] in 0..23 (UTC) of the request time
DAY_OF_WEEK = "day_of_week"  # tf.int32 [] in 0..6, Monday = 0
QUERY_TOKEN_IDS = "query_token_ids"  # tf.int32 [query_text_length]; 0 padding; all 0: no query

# ---- Candidate-side inputs (what the catalog holds for an item).
ITEM_ID = "item_id"  # tf.string []
ITEM_TOKEN_IDS = "item_token_ids"  # tf.int32 [text_length]; WordPiece ids of item text, 0 padding
ITEM_CATEGORY = "item_category"  # tf.string []; "" when unknown
ITEM_PRICE = "item_price"  # tf.float32 []; standardized log1p(price), 0.0 when unknown

# ---- Ranking-only input: what the first stage thought of the candidate.
RETRIEVAL_SCORE = "retrieval_score"  # tf.float32 []; towers' dot product + repeat-prior bonus

QUERY_FEATURES = (
    USER_ID,
    HISTORY_ITEM_IDS,
    HISTORY_EVENT_TYPES,
    HOUR_OF_DAY,
    DAY_OF_WEEK,
    QUERY_TOKEN_IDS,
)
CANDIDATE_FEATURES = (ITEM_ID, ITEM_TOKEN_IDS, ITEM_CATEGORY, ITEM_PRICE)

# WordPiece special tokens; "[PAD]" must be id 0 so zero padding means "no token".
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_FILES = {
    "users": "users.txt",
    "items": "items.txt",
    "categories": "categories.txt",
    "wordpiece": "wordpiece.txt",
}


@dataclasses.dataclass
class FeatureSpec:
    """Shapes and vocabularies of the model inputs, learned from the training split only.

    Args:
        max_history: int. Recent events the query tower sees.
        text_length: int. WordPiece tokens per item text.
        query_text_length: int. WordPiece tokens per search query.
        event_types: tuple of str. Known event types (lookup vocabulary).
        users: list of str. User ids seen in training (others map to the OOV bucket).
        items: list of str. Item ids seen in training (others map to the OOV bucket).
        categories: list of str. Item categories seen in training.
        wordpiece: list of str. WordPiece vocabulary, id = position, "[PAD]" at id 0: learned
            from the catalog (SPECIAL_TOKENS first), or a pretrained text model's own.
        price_mean: float. Mean of log1p(price) over catalog items with a price.
        price_std: float. Its standard deviation.
        lowercase: bool. Whether the tokenizer lowercases text. Defaults to True.
        strip_accents: bool. Whether the tokenizer strips accents. Defaults to True.
    """

    max_history: int
    text_length: int
    query_text_length: int
    event_types: tuple
    users: list
    items: list
    categories: list
    wordpiece: list
    price_mean: float = 0.0
    price_std: float = 1.0
    lowercase: bool = True
    strip_accents: bool = True

    def tensor_specs(self):
        """tf.TensorSpec per input name, unbatched: the signature of the towers."""
        import tensorflow as tf

        return {
            USER_ID: tf.TensorSpec([], tf.string, USER_ID),
            HISTORY_ITEM_IDS: tf.TensorSpec([self.max_history], tf.string, HISTORY_ITEM_IDS),
            HISTORY_EVENT_TYPES: tf.TensorSpec([self.max_history], tf.string, HISTORY_EVENT_TYPES),
            HOUR_OF_DAY: tf.TensorSpec([], tf.int32, HOUR_OF_DAY),
            DAY_OF_WEEK: tf.TensorSpec([], tf.int32, DAY_OF_WEEK),
            QUERY_TOKEN_IDS: tf.TensorSpec([self.query_text_length], tf.int32, QUERY_TOKEN_IDS),
            ITEM_ID: tf.TensorSpec([], tf.string, ITEM_ID),
            ITEM_TOKEN_IDS: tf.TensorSpec([self.text_length], tf.int32, ITEM_TOKEN_IDS),
            ITEM_CATEGORY: tf.TensorSpec([], tf.string, ITEM_CATEGORY),
            ITEM_PRICE: tf.TensorSpec([], tf.float32, ITEM_PRICE),
        }

    def tokenizer(self, sequence_length: int):
        """The keras-nlp WordPiece tokenizer over this spec's vocabulary (needs tensorflow-text)."""
        import keras_nlp

        return keras_nlp.tokenizers.WordPieceTokenizer(
            vocabulary=list(self.wordpiece),
            sequence_length=sequence_length,
            lowercase=self.lowercase,
            strip_accents=self.strip_accents,
            oov_token="[UNK]",
        )

    def save(self, directory: os.PathLike | str) -> None:
        """Writes spec.json and one vocabulary file per list, each atomically."""
        directory = Path(directory)
        meta = {k: v for k, v in dataclasses.asdict(self).items() if k not in _FILES}
        meta["event_types"] = list(self.event_types)
        for key, name in _FILES.items():
            values = list(getattr(self, key))
            # One entry per line; an empty list is an empty file (not one empty entry).
            config_lib.write_text_atomic(directory / name, "".join(f"{v}\n" for v in values))
        config_lib.write_text_atomic(directory / "spec.json", json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: os.PathLike | str) -> FeatureSpec:
        directory = Path(directory)
        path = directory / "spec.json"
        if not path.is_file():
            raise errors.WorkdirError(f"no feature spec at `{path}`")
        meta = json.loads(path.read_text(encoding="utf-8"))
        for key, name in _FILES.items():
            text = (directory / name).read_text(encoding="utf-8")
            # "" is never a vocabulary entry (it means padding): a file holding only a line
            # break, as an empty list was once written, is an empty list.
            meta[key] = [] if text in ("", "\n") else text.split("\n")[:-1]
        meta["event_types"] = tuple(meta["event_types"])
        return cls(**meta)
