"""Reads a Hugging Face BERT checkpoint's WordPiece vocabulary and its normalization settings."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from tfrec import errors

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SENTENCE_BERT_CONFIG_FILE = "sentence_bert_config.json"

# keras-nlp's BertTokenizer refuses a vocabulary without these (and `[UNK]` for unknown pieces).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """A WordPiece vocabulary with the text normalization the model was trained with.

    Args:
        tokens: tuple of str. Token of each id.
        lowercase: bool. Whether text is lowercased before WordPiece.
        strip_accents: bool. Whether accents are removed (NFD, drop combining marks).
        source: str. File the tokens were read from.
        lowercase_source: str. File (and field) `lowercase` was read from, or "default".
    """

    tokens: tuple
    lowercase: bool
    strip_accents: bool
    source: str
    lowercase_source: str


def read_json_object(path: Path) -> dict | None:
    """The JSON object in `path`, None when there is no such file.

    Raises:
        errors.DataError: The file is unreadable, not JSON, or not an object.
    """
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise errors.DataError(f"expected a JSON object, could not parse it: {e}", path=path) from e
    if not isinstance(value, dict):
        raise errors.DataError(
            f"expected a JSON object, received a {type(value).__name__}", path=path
        )
    return value


def _tokens_from_tokenizer_json(path: Path, tokenizer: dict) -> list[str]:
    model = tokenizer.get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise errors.DataError(
            f"expected a WordPiece model with a `vocab` mapping, received model type "
            f"{model.get('type')!r}",
            path=path,
            field="model",
        )
    vocab = model["vocab"]
    ids = sorted(vocab.values())
    if ids != list(range(len(vocab))):
        raise errors.DataError(
            f"expected token ids 0..{len(vocab) - 1} each used once, received ids from "
            f"{ids[0] if ids else None} to {ids[-1] if ids else None} with gaps or repeats",
            path=path,
            field="model.vocab",
        )
    tokens = [""] * len(vocab)
    for token, i in vocab.items():
        tokens[i] = token
    return tokens


def _normalizer_flags(normalizer: dict | None) -> tuple[bool | None, bool | None]:
    """(lowercase, strip_accents) a `tokenizers` normalizer applies; None where it is silent."""
    if not normalizer:
        return None, None
    if normalizer.get("type") == "BertNormalizer":
        return normalizer.get("lowercase"), normalizer.get("strip_accents")
    if normalizer.get("type") == "Sequence":
        types = {n.get("type") for n in normalizer.get("normalizers", [])}
        return "Lowercase" in types, "StripAccents" in types
    return normalizer.get("type") == "Lowercase", normalizer.get("type") == "StripAccents"


def read_vocabulary(src: os.PathLike | str) -> Vocabulary:
    """Reads the vocabulary (`vocab.txt` or `tokenizer.json`) and lowercasing of a checkpoint.

    `lowercase` comes from `tokenizer_config.json` (`do_lower_case`) and `tokenizer.json` (the
    normalizer); when both are present they must agree. With neither, it defaults to True like
    Hugging Face's `BertTokenizer`. Accents are stripped as Hugging Face does: when
    `strip_accents` is unset, exactly when lowercasing.

    Args:
        src: Path of the checkpoint folder.

    Returns:
        The `Vocabulary`.

    Raises:
        errors.DataError: No vocabulary file, a malformed one, missing special tokens, tokens a
            line-per-token file cannot hold, or disagreeing lowercase settings.
    """
    src = Path(src)
    tokenizer_path = src / TOKENIZER_FILE
    tokenizer = read_json_object(tokenizer_path)
    vocab_path = src / VOCAB_FILE
    if vocab_path.is_file():
        try:
            text = vocab_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise errors.DataError(
                f"expected UTF-8 text, could not read it: {e}", path=vocab_path
            ) from e
        tokens = text.split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        tokens = [t.rstrip("\r") for t in tokens]
        source = vocab_path
        if tokenizer is not None and tokenizer.get("model", {}).get("type") == "WordPiece":
            if _tokens_from_tokenizer_json(tokenizer_path, tokenizer) != tokens:
                raise errors.DataError(
                    f"expected the same vocabulary as `{VOCAB_FILE}`, received a different one",
                    path=tokenizer_path,
                    field="model.vocab",
                )
    elif tokenizer is not None:
        tokens = _tokens_from_tokenizer_json(tokenizer_path, tokenizer)
        source = tokenizer_path
    else:
        raise errors.DataError(
            f"expected a WordPiece vocabulary in `{VOCAB_FILE}` or `{TOKENIZER_FILE}`, found "
            "neither",
            path=src,
        )
    for i, token in enumerate(tokens):
        # keras-nlp stores the vocabulary one token per line and strips line ends on reading.
        if token != token.strip() or not token or any(c in token for c in "\n\r\x0b\x0c"):
            raise errors.DataError(
                f"expected tokens without surrounding whitespace or line breaks, received "
                f"{token!r} at id {i}",
                path=source,
            )
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise errors.DataError(
            f"expected the BERT special tokens {list(SPECIAL_TOKENS)}, missing {missing}",
            path=source,
        )
    if len(set(tokens)) != len(tokens):
        raise errors.DataError("expected each token once, received repeated tokens", path=source)

    settings = []  # (source, lowercase, strip_accents)
    tokenizer_config = read_json_object(src / TOKENIZER_CONFIG_FILE)
    if tokenizer_config is not None and "do_lower_case" in tokenizer_config:
        settings.append(
            (
                f"{TOKENIZER_CONFIG_FILE}:do_lower_case",
                bool(tokenizer_config["do_lower_case"]),
                tokenizer_config.get("strip_accents"),
            )
        )
    if tokenizer is not None:
        lower, strip = _normalizer_flags(tokenizer.get("normalizer"))
        if lower is not None:
            settings.append((f"{TOKENIZER_FILE}:normalizer", bool(lower), strip))
    if len({s[1] for s in settings}) > 1:
        raise errors.DataError(
            "expected one lowercasing setting, received disagreeing ones: "
            + ", ".join(f"{s[0]}={s[1]}" for s in settings),
            path=src,
        )
    lowercase_source, lowercase, strip_accents = (
        settings[0] if settings else ("default", True, None)
    )
    # sentence-transformers may lowercase before the tokenizer sees the text.
    st_config = read_json_object(src / SENTENCE_BERT_CONFIG_FILE)
    if st_config is not None and st_config.get("do_lower_case"):
        lowercase, lowercase_source = True, f"{SENTENCE_BERT_CONFIG_FILE}:do_lower_case"
    return Vocabulary(
        tokens=tuple(tokens),
        lowercase=lowercase,
        strip_accents=lowercase if strip_accents is None else bool(strip_accents),
        source=str(source),
        lowercase_source=lowercase_source,
    )
