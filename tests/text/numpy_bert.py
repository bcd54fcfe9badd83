"""An independent NumPy BERT encoder (Hugging Face weight names and layout) for golden tests."""

from __future__ import annotations

import math

import numpy as np
import safetensors.numpy

_erf = np.vectorize(math.erf, otypes=[np.float64])


def load_tensors(path) -> dict:
    """Reads a Hugging Face `model.safetensors` as float64 arrays named without `bert.`."""
    tensors = safetensors.numpy.load_file(str(path))
    return {
        (k[len("bert.") :] if k.startswith("bert.") else k): v.astype(np.float64)
        for k, v in tensors.items()
    }


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x), as Hugging Face's `hidden_act: "gelu"`."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """The tanh approximation of GELU (what keras-nlp's stock BERT computes)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x, t, name):
    # PyTorch Linear: y = x W^T + b with W [out, in].
    return x @ t[f"{name}.weight"].T + t[f"{name}.bias"]


def encode(t: dict, token_ids, num_layers: int, num_heads: int, activation=gelu) -> np.ndarray:
    """BERT token states `[batch, length, hidden]` for `token_ids` (0 = padding, segment 0)."""
    token_ids = np.asarray(token_ids)
    batch, length = token_ids.shape
    x = (
        t["embeddings.word_embeddings.weight"][token_ids]
        + t["embeddings.position_embeddings.weight"][np.arange(length)][None]
        + t["embeddings.token_type_embeddings.weight"][np.zeros_like(token_ids)]
    )
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    hidden = x.shape[-1]
    head_dim = hidden // num_heads
    # Padding keys get -inf logits: no attention from any query onto padding.
    key_bias = np.where(token_ids != 0, 0.0, -np.inf)[:, None, None, :]
    for i in range(num_layers):
        p = f"encoder.layer.{i}."

        def heads(y):
            return y.reshape(batch, length, num_heads, head_dim).transpose(0, 2, 1, 3)

        q = heads(linear(x, t, p + "attention.self.query"))
        k = heads(linear(x, t, p + "attention.self.key"))
        v = heads(linear(x, t, p + "attention.self.value"))
        logits = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + key_bias
        logits -= logits.max(-1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        attended = linear(context, t, p + "attention.output.dense")
        x = layer_norm(
            x + attended,
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
        )
        inner = activation(linear(x, t, p + "intermediate.dense"))
        x = layer_norm(
            x + linear(inner, t, p + "output.dense"),
            t[p + "output.LayerNorm.weight"],
            t[p + "output.LayerNorm.bias"],
        )
    return x


def mean_pool(states: np.ndarray, token_ids) -> np.ndarray:
    """Mean of the token states over non-padding positions: `[batch, hidden]`."""
    mask = (np.asarray(token_ids) != 0).astype(np.float64)[..., None]
    return (states * mask).sum(1) / mask.sum(1)


def tensors_from_keras(backbone) -> dict:
    """Hugging Face-named float64 tensors read back from a keras-nlp `BertBackbone`.

    For checkpoints whose safetensors file is gone (a cached preset): the NumPy encoder then
    checks the Keras computation on the very same weights.
    """
    # Keras splits q/k/v/output kernels per head; reshaping back gives PyTorch's [out, in].T.
    h = backbone.hidden_dim
    t = {
        "embeddings.word_embeddings.weight": backbone.get_layer("token_embedding").embeddings,
        "embeddings.position_embeddings.weight": backbone.get_layer(
            "position_embedding"
        ).position_embeddings,
        "embeddings.token_type_embeddings.weight": backbone.get_layer(
            "segment_embedding"
        ).embeddings,
        "embeddings.LayerNorm.weight": backbone.get_layer("embeddings_layer_norm").gamma,
        "embeddings.LayerNorm.bias": backbone.get_layer("embeddings_layer_norm").beta,
    }
    t = {k: np.asarray(v, np.float64) for k, v in t.items()}
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}."
        att = block._self_attention_layer
        for name, dense in (("query", att._query_dense), ("key", att._key_dense), ("value", att._value_dense)):  # fmt: skip
            t[f"{p}attention.self.{name}.weight"] = np.asarray(dense.kernel).reshape(h, h).T
            t[f"{p}attention.self.{name}.bias"] = np.asarray(dense.bias).reshape(h)
        t[f"{p}attention.output.dense.weight"] = (
            np.asarray(att._output_dense.kernel).reshape(h, h).T
        )
        t[f"{p}attention.output.dense.bias"] = np.asarray(att._output_dense.bias)
        for name, ln in (("attention.output.LayerNorm", block._self_attention_layer_norm),
                         ("output.LayerNorm", block._feedforward_layer_norm)):  # fmt: skip
            t[f"{p}{name}.weight"], t[f"{p}{name}.bias"] = np.asarray(ln.gamma), np.asarray(ln.beta)
        for name, dense in (("intermediate.dense", block._feedforward_intermediate_dense),
                            ("output.dense", block._feedforward_output_dense)):  # fmt: skip
            t[f"{p}{name}.weight"] = np.asarray(dense.kernel).T
            t[f"{p}{name}.bias"] = np.asarray(dense.bias)
    return {k: np.asarray(v, np.float64) for k, v in t.items()}
