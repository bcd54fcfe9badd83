"""Converts a Hugging Face BERT checkpoint folder into a keras-nlp preset folder."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path

import keras_nlp
import numpy as np
import tensorflow as tf

from tfrec import errors
from tfrec.layers import hf_bert_backbone, text_encoder
from tfrec.text import hf_checkpoint, hf_vocabulary

# File layout keras-nlp 0.12.1's `from_preset` reads (keras_nlp/src/utils/preset_utils.py).
PRESET_CONFIG = "config.json"
PRESET_WEIGHTS = "model.weights.h5"
PRESET_METADATA = "metadata.json"
PRESET_TOKENIZER = "tokenizer.json"
PRESET_VOCABULARY = "assets/tokenizer/vocabulary.txt"
PRESET_FILES = (PRESET_CONFIG, PRESET_WEIGHTS, PRESET_METADATA, PRESET_TOKENIZER, PRESET_VOCABULARY)

_LICENCE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE")


class PresetExistsError(errors.TfrecError, FileExistsError):
    """The preset folder to write already exists and replacing it was not asked for."""


def file_sha256(path: os.PathLike | str) -> str:
    """Hex SHA-256 of a file, read in chunks (checkpoints are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _licence_of(src: Path) -> str | None:
    """The licence a checkpoint folder declares: model-card front matter, else a LICENSE file."""
    readme = src / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        front = re.match(r"---\s*\n(.*?)\n---", text, re.DOTALL)
        if front:
            found = re.search(r"^licen[cs]e:\s*['\"]?([^'\"\n]+)", front.group(1), re.MULTILINE)
            if found:
                return found.group(1).strip()
    for name in _LICENCE_FILES:
        if (src / name).is_file():
            first = (src / name).read_text(encoding="utf-8", errors="replace").strip()
            return first.splitlines()[0].strip() if first else None
    return None


def _sentence_transformers_info(src: Path) -> dict | None:
    """How sentence-transformers used the checkpoint (length limit, pooling, normalization)."""

    def read(path: Path):
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None  # informative only: a broken optional file must not stop the import

    modules = read(src / "modules.json")
    if not isinstance(modules, list):
        return None
    info: dict = {"modules": [m.get("type") for m in modules if isinstance(m, dict)]}
    bert_config = read(src / "sentence_bert_config.json")
    if isinstance(bert_config, dict) and "max_seq_length" in bert_config:
        info["max_seq_length"] = bert_config["max_seq_length"]
    for module in modules:
        if isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling"):
            pooling = read(src / str(module.get("path", "")) / "config.json")
            if isinstance(pooling, dict):
                info["pooling"] = [
                    k[len("pooling_mode_") :]
                    for k, v in pooling.items()
                    if k.startswith("pooling_mode_") and v is True
                ]
    info["normalize"] = any(str(t).endswith("Normalize") for t in info["modules"])
    return info


def _port_weights(backbone: keras_nlp.models.BertBackbone, weights: hf_checkpoint.Weights):
    """Copies checkpoint tensors into `backbone`, transposing PyTorch `[out, in]` kernels."""
    t = weights.tensors
    heads = backbone.num_heads
    head_dim = backbone.hidden_dim // heads
    hidden = backbone.hidden_dim

    def assign(variable, value):
        value = np.asarray(value, dtype=np.float32)
        if tuple(variable.shape) != value.shape:  # guards the mapping itself, not the input
            raise AssertionError(f"{variable.name}: {tuple(variable.shape)} != {value.shape}")
        variable.assign(value)

    def layer_norm(layer, name):
        assign(layer.gamma, t[f"{name}.weight"])
        assign(layer.beta, t[f"{name}.bias"])

    assign(backbone.get_layer("token_embedding").embeddings, t["embeddings.word_embeddings.weight"])
    assign(
        backbone.get_layer("position_embedding").position_embeddings,
        t["embeddings.position_embeddings.weight"],
    )
    assign(
        backbone.get_layer("segment_embedding").embeddings,
        t["embeddings.token_type_embeddings.weight"],
    )
    layer_norm(backbone.get_layer("embeddings_layer_norm"), "embeddings.LayerNorm")
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}."
        attention = block._self_attention_layer
        for proj, dense in (
            ("query", attention._query_dense),
            ("key", attention._key_dense),
            ("value", attention._value_dense),
        ):
            assign(
                dense.kernel,
                t[f"{p}attention.self.{proj}.weight"].T.reshape(hidden, heads, head_dim),
            )
            assign(dense.bias, t[f"{p}attention.self.{proj}.bias"].reshape(heads, head_dim))
        output = attention._output_dense
        assign(
            output.kernel, t[f"{p}attention.output.dense.weight"].T.reshape(heads, head_dim, hidden)
        )
        assign(output.bias, t[f"{p}attention.output.dense.bias"])
        layer_norm(block._self_attention_layer_norm, f"{p}attention.output.LayerNorm")
        assign(block._feedforward_intermediate_dense.kernel, t[f"{p}intermediate.dense.weight"].T)
        assign(block._feedforward_intermediate_dense.bias, t[f"{p}intermediate.dense.bias"])
        assign(block._feedforward_output_dense.kernel, t[f"{p}output.dense.weight"].T)
        assign(block._feedforward_output_dense.bias, t[f"{p}output.dense.bias"])
        layer_norm(block._feedforward_layer_norm, f"{p}output.LayerNorm")
    pooler = backbone.get_layer("pooled_dense")
    if weights.has_pooler:
        assign(pooler.kernel, t["pooler.dense.weight"].T)
        assign(pooler.bias, t["pooler.dense.bias"])
    else:
        # No trained pooler: zeros make `pooled_output` exactly 0 instead of random features
        # that look meaningful; tfrec pools the token states instead.
        assign(pooler.kernel, np.zeros(pooler.kernel.shape))
        assign(pooler.bias, np.zeros(pooler.bias.shape))


def _write_tokenizer(vocabulary: hf_vocabulary.Vocabulary, directory: Path) -> None:
    tokenizer = keras_nlp.models.BertTokenizer(
        vocabulary=list(vocabulary.tokens),
        lowercase=vocabulary.lowercase,
        strip_accents=vocabulary.strip_accents,
    )
    config = tf.keras.saving.serialize_keras_object(tokenizer)
    config.pop("build_config", None)
    (directory / PRESET_TOKENIZER).write_text(json.dumps(config, indent=2), encoding="utf-8")
    asset_dir = directory / os.path.dirname(PRESET_VOCABULARY)
    asset_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_assets(str(asset_dir))


def _verify(directory: Path, backbone, vocabulary: hf_vocabulary.Vocabulary) -> None:
    """Reloads the written preset the way its users will, and compares it with what was meant."""
    loaded = keras_nlp.models.BertBackbone.from_preset(str(directory))
    for want, got in zip(backbone.weights, loaded.weights, strict=True):
        if not np.array_equal(want.numpy(), got.numpy()):
            raise errors.DataError(
                f"expected the reloaded preset to hold the converted weights, `{got.name}` differs",
                path=directory / PRESET_WEIGHTS,
            )
    tokenizer = keras_nlp.models.BertTokenizer.from_preset(str(directory))
    if tuple(tokenizer.get_vocabulary()) != vocabulary.tokens:
        raise errors.DataError(
            f"expected the reloaded vocabulary to equal the source's {len(vocabulary.tokens)} "
            f"tokens, received {tokenizer.vocabulary_size()} differing",
            path=directory / PRESET_VOCABULARY,
        )


def import_hf(
    src: os.PathLike | str,
    out: os.PathLike | str,
    *,
    overwrite: bool = False,
    source: str | None = None,
    licence: str | None = None,
    provenance: dict | None = None,
) -> Path:
    """Converts a Hugging Face BERT checkpoint folder into a keras-nlp preset folder.

    The source folder holds `config.json`, `model.safetensors` and `vocab.txt` or
    `tokenizer.json` (as `save_pretrained` or sentence-transformers write them). Every tensor is
    checked against the config before anything is written; the preset is built in a temporary
    sibling folder, reloaded and compared, then renamed into place, so `out` is either complete
    or untouched. The result loads with `keras_nlp.models.BertBackbone.from_preset(out)` and
    `keras_nlp.models.BertTokenizer.from_preset(out)` once `tfrec.layers.text_encoder` is imported (the
    backbone class, `HfBertBackbone`, computes the checkpoint's exact GELU).

    Args:
        src: Path of the checkpoint folder.
        out: Path of the preset folder to write.
        overwrite: bool. Replace an existing `out`. Defaults to False.
        source: str or None. Where the checkpoint came from, recorded in `metadata.json`.
            Defaults to the absolute path of `src`.
        licence: str or None. The checkpoint's licence. Defaults to what the folder declares
            (model-card front matter or a LICENSE file), or "unknown".
        provenance: dict or None. Extra JSON-serializable facts recorded under `provenance`.

    Returns:
        The path of the written preset folder.

    Raises:
        errors.DataError: The checkpoint is missing a file, is malformed, or is not a supported
            BERT (see `hf_checkpoint.read_config`, `hf_checkpoint.read_weights`,
            `hf_vocabulary.read_vocabulary`).
        PresetExistsError: `out` exists and `overwrite` is False.

    Example:
        >>> import_hf("all-MiniLM-L6-v2", "presets/minilm")  # doctest: +SKIP
        PosixPath('presets/minilm')
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise errors.DataError("expected a Hugging Face checkpoint folder, found none", path=src)
    if out.exists() and not overwrite:
        raise PresetExistsError(
            f"`out` must not exist (pass overwrite=True to replace it), received `{out}`"
        )
    spec = hf_checkpoint.read_config(src)
    weights = hf_checkpoint.read_weights(src, spec)
    vocabulary = hf_vocabulary.read_vocabulary(src)
    if len(vocabulary.tokens) > spec.vocabulary_size:
        raise errors.DataError(
            f"expected at most `vocab_size`={spec.vocabulary_size} tokens (rows of the token "
            f"embedding), received {len(vocabulary.tokens)}",
            path=vocabulary.source,
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        backbone = hf_bert_backbone.HfBertBackbone(
            intermediate_activation="gelu", **spec.backbone_kwargs()
        )
        _port_weights(backbone, weights)
        text_encoder.save_backbone_preset(backbone, tmp)
        _write_tokenizer(vocabulary, tmp)
        metadata = json.loads((tmp / PRESET_METADATA).read_text(encoding="utf-8"))
        metadata.update(
            {
                "source": source or str(src.resolve()),
                "licence": licence or _licence_of(src) or "unknown",
                "model_safetensors_sha256": file_sha256(src / hf_checkpoint.WEIGHTS_FILE),
                "architecture": {"model_type": "bert", **spec.backbone_kwargs()},
                "intermediate_activation": "gelu",
                "has_pooler": weights.has_pooler,
                "ignored_tensors": list(weights.ignored),
                "tokenizer": {
                    "vocabulary_size": len(vocabulary.tokens),
                    "vocabulary_source": Path(vocabulary.source).name,
                    "lowercase": vocabulary.lowercase,
                    "lowercase_source": vocabulary.lowercase_source,
                    "strip_accents": vocabulary.strip_accents,
                },
                "provenance": provenance or {},
                "sentence_transformers": _sentence_transformers_info(src),
            }
        )
        (tmp / PRESET_METADATA).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        _verify(tmp, backbone, vocabulary)
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def check_preset(directory: os.PathLike | str) -> dict:
    """Checks that `directory` is a complete preset written by `import_hf`; returns its metadata.

    Raises:
        errors.DataError: A preset file is missing, or `config.json` holds another backbone
            class (another architecture, or a preset not written by `import_hf`).
    """
    directory = Path(directory)
    missing = [name for name in PRESET_FILES if not (directory / name).is_file()]
    if missing:
        raise errors.DataError(
            f"expected a complete preset folder holding {list(PRESET_FILES)}, missing {missing}",
            path=directory,
        )
    expected = tf.keras.utils.get_registered_name(hf_bert_backbone.HfBertBackbone)
    try:
        config = json.loads((directory / PRESET_CONFIG).read_text(encoding="utf-8"))
        metadata = json.loads((directory / PRESET_METADATA).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise errors.DataError(
            f"expected JSON preset files, could not parse: {e}", path=directory
        ) from e
    received = config.get("registered_name") if isinstance(config, dict) else None
    if received != expected:
        raise errors.DataError(
            f"expected a `{expected}` backbone (an imported BERT), received {received!r}",
            path=directory / PRESET_CONFIG,
            field="registered_name",
        )
    return metadata
