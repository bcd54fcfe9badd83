"""Writes tiny random Hugging Face BERT checkpoint folders for tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import safetensors.numpy

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "dog", "##gy", "food", "candle", "holder", "puppy", "kib", "##ble", "red", ".",
]  # fmt: skip

CONFIG = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "hidden_act": "gelu",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
    "vocab_size": len(VOCAB),
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "absolute",
    "pad_token_id": 0,
}


def random_tensors(config: dict, seed: int = 0, pooler: bool = True) -> dict:
    """Random float32 tensors named as Hugging Face's `BertModel.save_pretrained` names them.

    Kernels are large enough (std 0.3) that feed-forward inputs reach |x| ~ 2, where exact and
    tanh GELU differ by ~1e-4: a backbone computing the wrong one fails the golden test.
    """
    rng = np.random.default_rng(seed)
    h, m = config["hidden_size"], config["intermediate_size"]

    def w(*shape, std=0.3):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    t = {
        "embeddings.word_embeddings.weight": w(config["vocab_size"], h, std=1.0),
        "embeddings.position_embeddings.weight": w(config["max_position_embeddings"], h, std=1.0),
        "embeddings.token_type_embeddings.weight": w(config["type_vocab_size"], h, std=1.0),
        "embeddings.LayerNorm.weight": 1 + w(h, std=0.1),
        "embeddings.LayerNorm.bias": w(h, std=0.1),
        "embeddings.position_ids": np.arange(config["max_position_embeddings"])[None],
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value"):
            t[p + name + ".weight"], t[p + name + ".bias"] = w(h, h), w(h, std=0.1)
        t[p + "attention.output.dense.weight"] = w(h, h)
        t[p + "attention.output.dense.bias"] = w(h, std=0.1)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = w(m, h), w(m)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = w(h, m), w(h, std=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"], t[p + ln + ".bias"] = 1 + w(h, std=0.1), w(h, std=0.1)
    if pooler:
        t["pooler.dense.weight"], t["pooler.dense.bias"] = w(h, h), w(h, std=0.1)
    return t


def write(
    folder,
    *,
    config_overrides: dict | None = None,
    tensors: dict | None = None,
    prefix: str = "",
    do_lower_case: bool | None = True,
    vocab: list | None = None,
) -> Path:
    """Writes config.json, model.safetensors, vocab.txt (and tokenizer_config.json) to `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {**CONFIG, **(config_overrides or {})}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    tensors = random_tensors(CONFIG) if tensors is None else tensors
    safetensors.numpy.save_file(
        {prefix + k: np.ascontiguousarray(v) for k, v in tensors.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    (folder / "vocab.txt").write_text("\n".join(vocab or VOCAB) + "\n", encoding="utf-8")
    if do_lower_case is not None:
        (folder / "tokenizer_config.json").write_text(
            json.dumps({"do_lower_case": do_lower_case, "tokenizer_class": "BertTokenizer"}),
            encoding="utf-8",
        )
    return folder
