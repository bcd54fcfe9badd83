"""Reads and checks a Hugging Face BERT checkpoint folder: config.json and model.safetensors."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from tfrec import errors
from tfrec.text import hf_vocabulary

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

# keras-nlp's BertBackbone fixes every LayerNorm epsilon at 1e-12 (BERT's own value).
_KERAS_LAYER_NORM_EPSILON = 1e-12
# Buffers saved next to the weights by some `transformers` versions: not parameters.
_BUFFERS = ("embeddings.position_ids",)
# Parameters of the backbone live under these names; anything else (`cls.*`, `classifier.*`:
# pre-training or task heads) is not part of a sentence encoder and is left out.
_BACKBONE_SCOPES = ("embeddings.", "encoder.", "pooler.")
# safetensors dtypes NumPy reads; bfloat16 has no NumPy dtype.
_FLOAT_DTYPES = ("F16", "F32", "F64")


@dataclasses.dataclass(frozen=True)
class BertSpec:
    """The architecture a Hugging Face BERT `config.json` describes, in keras-nlp terms.

    Args:
        vocabulary_size: int. Rows of the token embedding (`vocab_size`).
        num_layers: int. Transformer layers (`num_hidden_layers`).
        num_heads: int. Attention heads (`num_attention_heads`).
        hidden_dim: int. Model width (`hidden_size`).
        intermediate_dim: int. Feed-forward width (`intermediate_size`).
        max_sequence_length: int. Position embeddings (`max_position_embeddings`).
        num_segments: int. Token-type embeddings (`type_vocab_size`).
    """

    vocabulary_size: int
    num_layers: int
    num_heads: int
    hidden_dim: int
    intermediate_dim: int
    max_sequence_length: int
    num_segments: int

    def backbone_kwargs(self) -> dict:
        """Constructor arguments of a keras-nlp `BertBackbone` with this architecture."""
        return dataclasses.asdict(self)


def _config_error(path: Path, field: str, message: str) -> errors.DataError:
    return errors.DataError(message, path=path, field=field)


def read_config(src: os.PathLike | str) -> BertSpec:
    """Reads `config.json` of a Hugging Face checkpoint folder and checks it is a supported BERT.

    Args:
        src: Path of the checkpoint folder.

    Returns:
        The architecture, as a `BertSpec`.

    Raises:
        errors.DataError: The file is missing or unreadable, is a Keras preset config, or
            describes something keras-nlp's `BertBackbone` cannot compute exactly (another
            `model_type`, relative position embeddings, an activation other than exact GELU, a
            LayerNorm epsilon other than 1e-12).
    """
    path = Path(src) / CONFIG_FILE
    if not path.is_file():
        raise errors.DataError(
            "expected a Hugging Face BERT `config.json` in the checkpoint folder, found no such "
            "file",
            path=path,
        )
    config = hf_vocabulary.read_json_object(path) or {}
    if "registered_name" in config or "class_name" in config:
        raise _config_error(
            path,
            "model_type",
            "expected a Hugging Face checkpoint config (with `model_type`), received a Keras "
            f"preset config of class {config.get('registered_name') or config.get('class_name')!r}",
        )
    model_type = config.get("model_type")
    if model_type != "bert":
        raise _config_error(
            path,
            "model_type",
            f"expected 'bert' (a BERT-family checkpoint), received {model_type!r}",
        )
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise _config_error(
            path,
            "position_embedding_type",
            f"expected 'absolute' (keras-nlp BERT learns absolute positions), received "
            f"{position_type!r}",
        )
    activation = config.get("hidden_act")
    if activation != "gelu":
        raise _config_error(
            path,
            "hidden_act",
            f"expected 'gelu' (exact erf GELU, the only activation imported), received "
            f"{activation!r}",
        )
    epsilon = config.get("layer_norm_eps", _KERAS_LAYER_NORM_EPSILON)
    if not isinstance(epsilon, (int, float)) or not np.isclose(
        epsilon, _KERAS_LAYER_NORM_EPSILON, rtol=1e-6, atol=0.0
    ):
        raise _config_error(
            path,
            "layer_norm_eps",
            f"expected {_KERAS_LAYER_NORM_EPSILON} (fixed in keras-nlp's BERT), received {epsilon!r}",
        )

    def positive_int(field: str, default: int | None = None) -> int:
        value = config.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _config_error(path, field, f"expected an int >= 1, received {value!r}")
        return value

    spec = BertSpec(
        vocabulary_size=positive_int("vocab_size"),
        num_layers=positive_int("num_hidden_layers"),
        num_heads=positive_int("num_attention_heads"),
        hidden_dim=positive_int("hidden_size"),
        intermediate_dim=positive_int("intermediate_size"),
        max_sequence_length=positive_int("max_position_embeddings", 512),
        num_segments=positive_int("type_vocab_size", 2),
    )
    if spec.hidden_dim % spec.num_heads:
        raise _config_error(
            path,
            "hidden_size",
            f"expected a multiple of `num_attention_heads`={spec.num_heads}, received "
            f"{spec.hidden_dim}",
        )
    return spec


def expected_shapes(spec: BertSpec) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every backbone tensor a Hugging Face BERT with `spec` saves.

    Names are without the optional `bert.` prefix; PyTorch `Linear` weights are `[out, in]`.
    The pooler (`pooler.dense.*`) is not listed: sentence-transformers checkpoints may lack it.
    """
    h, m = spec.hidden_dim, spec.intermediate_dim
    shapes = {
        "embeddings.word_embeddings.weight": (spec.vocabulary_size, h),
        "embeddings.position_embeddings.weight": (spec.max_sequence_length, h),
        "embeddings.token_type_embeddings.weight": (spec.num_segments, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(spec.num_layers):
        p = f"encoder.layer.{i}."
        for proj in ("query", "key", "value"):
            shapes[f"{p}attention.self.{proj}.weight"] = (h, h)
            shapes[f"{p}attention.self.{proj}.bias"] = (h,)
        shapes[f"{p}attention.output.dense.weight"] = (h, h)
        shapes[f"{p}attention.output.dense.bias"] = (h,)
        shapes[f"{p}attention.output.LayerNorm.weight"] = (h,)
        shapes[f"{p}attention.output.LayerNorm.bias"] = (h,)
        shapes[f"{p}intermediate.dense.weight"] = (m, h)
        shapes[f"{p}intermediate.dense.bias"] = (m,)
        shapes[f"{p}output.dense.weight"] = (h, m)
        shapes[f"{p}output.dense.bias"] = (h,)
        shapes[f"{p}output.LayerNorm.weight"] = (h,)
        shapes[f"{p}output.LayerNorm.bias"] = (h,)
    return shapes


def pooler_shapes(spec: BertSpec) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the optional [CLS] pooler tensors."""
    return {
        "pooler.dense.weight": (spec.hidden_dim, spec.hidden_dim),
        "pooler.dense.bias": (spec.hidden_dim,),
    }


def _canonical(name: str, prefix: str) -> str:
    name = name[len(prefix) :]
    # Checkpoints converted from TensorFlow name LayerNorm parameters gamma/beta.
    if name.endswith("LayerNorm.gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith("LayerNorm.beta"):
        return name[: -len("beta")] + "bias"
    return name


@dataclasses.dataclass(frozen=True)
class Weights:
    """The checked tensors of a checkpoint.

    Args:
        tensors: dict. Canonical name (no `bert.` prefix, LayerNorm `weight`/`bias`) -> float32
            array, exactly the names of `expected_shapes` plus the pooler when present.
        has_pooler: bool. Whether the checkpoint holds the [CLS] pooler.
        ignored: tuple of str. Names in the file that are not backbone parameters (task heads,
            buffers), as written in the file.
    """

    tensors: dict
    has_pooler: bool
    ignored: tuple


def read_weights(src: os.PathLike | str, spec: BertSpec) -> Weights:
    """Reads `model.safetensors` and checks every tensor's name, dtype and shape against `spec`.

    Args:
        src: Path of the checkpoint folder.
        spec: The architecture from `read_config`.

    Returns:
        The tensors, as `Weights`.

    Raises:
        errors.DataError: The file is missing, truncated or corrupted; a backbone tensor is
            missing, has another shape or a non-float dtype; or an unexpected tensor sits inside
            the backbone (e.g. a layer the config does not declare).
    """
    path = Path(src) / WEIGHTS_FILE
    if not path.is_file():
        present = sorted(p.name for p in Path(src).iterdir()) if Path(src).is_dir() else []
        hint = ""
        if "model.safetensors.index.json" in present:
            hint = " (sharded checkpoints are not supported)"
        elif "pytorch_model.bin" in present:
            hint = " (PyTorch `pytorch_model.bin` files are not read: they need torch)"
        raise errors.DataError(
            f"expected the checkpoint weights in `{WEIGHTS_FILE}`, found no such file{hint}; the "
            f"folder holds {present}",
            path=path,
        )
    expected = expected_shapes(spec)
    pooler = pooler_shapes(spec)
    try:
        with safetensors.safe_open(str(path), framework="np") as f:
            names = list(f.keys())
            prefix = "bert." if any(n.startswith("bert.") for n in names) else ""
            selected, ignored = {}, []
            for name in names:
                canonical = _canonical(name, prefix) if name.startswith(prefix) else None
                if canonical in expected or canonical in pooler:
                    selected[canonical] = name
                elif (
                    canonical is not None
                    and canonical.startswith(_BACKBONE_SCOPES)
                    and (canonical not in _BUFFERS)
                ):
                    raise errors.DataError(
                        f"unexpected backbone tensor (not in a {spec.num_layers}-layer BERT as "
                        f"`{CONFIG_FILE}` describes)",
                        path=path,
                        field=name,
                    )
                else:
                    ignored.append(name)
            missing = [prefix + n for n in expected if n not in selected]
            if missing:
                raise errors.DataError(
                    f"missing tensor(s) {missing[:5]}{' ...' if len(missing) > 5 else ''} "
                    f"({len(missing)} of {len(expected)} expected by `{CONFIG_FILE}`)",
                    path=path,
                    field=missing[0],
                )
            has_pooler = sum(n in selected for n in pooler)
            if has_pooler == 1:
                raise errors.DataError(
                    "expected both pooler tensors (dense weight and bias) or neither, received one",
                    path=path,
                    field=prefix + next(n for n in pooler if n in selected),
                )
            tensors = {}
            for canonical, name in selected.items():
                piece = f.get_slice(name)
                shape, dtype = tuple(piece.get_shape()), piece.get_dtype()
                want = expected.get(canonical) or pooler[canonical]
                if shape != want:
                    raise errors.DataError(
                        f"expected shape {list(want)} (from `{CONFIG_FILE}`), received {list(shape)}",
                        path=path,
                        field=name,
                    )
                if dtype not in _FLOAT_DTYPES:
                    raise errors.DataError(
                        f"expected a float tensor ({', '.join(_FLOAT_DTYPES)}), received {dtype}",
                        path=path,
                        field=name,
                    )
                tensors[canonical] = np.asarray(f.get_tensor(name), dtype=np.float32)
    except safetensors.SafetensorError as e:
        raise errors.DataError(
            f"expected a complete safetensors file, could not read it (truncated or corrupted?): {e}",
            path=path,
        ) from e
    for canonical, array in tensors.items():
        if not np.all(np.isfinite(array)):
            raise errors.DataError(
                "expected finite values, received NaN or infinity", path=path, field=canonical
            )
    return Weights(tensors=tensors, has_pooler=bool(has_pooler), ignored=tuple(sorted(ignored)))
