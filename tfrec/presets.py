"""Where a pretrained text preset lives, and the WordPiece vocabulary it was trained with."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tfrec import errors

# `preset: default` names the model `tfrec text fetch-default` writes into the cache.
DEFAULT = "default"
DEFAULT_NAME = "all-minilm-l6-v2"
CACHE_ENV = "TFREC_CACHE"
_FETCH_HINT = "run `tfrec text fetch-default` to write it"


@dataclasses.dataclass(frozen=True)
class PresetVocabulary:
    """The tokenizer settings a pretrained model was trained with.

    Args:
        tokens: tuple of str. WordPiece vocabulary, id = position; "[PAD]" is id 0.
        lowercase: bool. Whether text is lowercased before WordPiece.
        strip_accents: bool. Whether accents are stripped before WordPiece.
        cls_token_id: int. Id of "[CLS]", prepended to every non-empty text.
        sep_token_id: int. Id of "[SEP]", appended to every non-empty text.
    """

    tokens: tuple
    lowercase: bool
    strip_accents: bool
    cls_token_id: int
    sep_token_id: int


def cache_root(cache: os.PathLike | str | None = None) -> Path:
    """The tfrec cache folder: `cache`, else `$TFREC_CACHE`, else `~/.cache/tfrec`."""
    if cache:
        return Path(cache).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "tfrec"


def default_preset_dir(cache: os.PathLike | str | None = None) -> Path:
    """Where the default preset lives: `<cache root>/presets/all-minilm-l6-v2`."""
    return cache_root(cache) / "presets" / DEFAULT_NAME


def resolve(preset: os.PathLike | str | None) -> Path:
    """The preset directory named by `preset`: a path, or "default" (the fetched MiniLM).

    Raises:
        errors.ConfigError: The directory does not exist or lacks a backbone `config.json`.
    """
    if preset is None:
        raise errors.ConfigError(
            "`model.text_encoder.preset` must name a preset directory or 'default' for a "
            f"pretrained text encoder, received none; {_FETCH_HINT}"
        )
    if str(preset) == DEFAULT:
        path = default_preset_dir()
        if not (path / "config.json").is_file():
            raise errors.ConfigError(
                f"`model.text_encoder.preset` is 'default' but no default text model is in the "
                f"cache (expected `{path}`): {_FETCH_HINT}"
            )
        return path
    path = Path(preset).expanduser()
    if not (path / "config.json").is_file():
        raise errors.ConfigError(
            f"`model.text_encoder.preset` must be a keras-nlp preset directory holding "
            f"config.json, received `{path}`; for the default model use 'default' and "
            f"{_FETCH_HINT}"
        )
    return path


def vocabulary(directory: os.PathLike | str) -> PresetVocabulary:
    """Reads the preset's tokenizer (`keras_nlp.models.BertTokenizer.from_preset`).

    Raises:
        errors.ConfigError: The preset has no tokenizer, or its vocabulary lacks a special
            token tfrec relies on ("[PAD]" at id 0, "[UNK]", "[CLS]", "[SEP]").
    """
    import keras_nlp

    directory = Path(directory)
    if not (directory / "tokenizer.json").is_file():
        raise errors.ConfigError(
            f"`model.text_encoder.preset` must hold its tokenizer (tokenizer.json and "
            f"assets/tokenizer/vocabulary.txt), `{directory}` has none"
        )
    tokenizer = keras_nlp.models.BertTokenizer.from_preset(str(directory))
    tokens = tuple(tokenizer.get_vocabulary())
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in tokens]
    if missing or tokens[0] != "[PAD]":
        raise errors.ConfigError(
            f"`model.text_encoder.preset` vocabulary must hold [PAD] at id 0, [UNK], [CLS] and "
            f"[SEP]; `{directory}` lacks {missing or ['[PAD] at id 0']}"
        )
    return PresetVocabulary(
        tokens=tokens,
        lowercase=bool(tokenizer.lowercase),
        strip_accents=bool(tokenizer.strip_accents),
        cls_token_id=tokens.index("[CLS]"),
        sep_token_id=tokens.index("[SEP]"),
    )
