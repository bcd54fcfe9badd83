"""Config -> objects: the only module that reads config objects to build layers and models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import features, presets
from tfrec.layers import history_encoder, pretrained_text_encoder, text_encoder
from tfrec.models import candidate_tower, query_tower, retrieval

# Share of training examples whose item id is replaced by OOV: enough for the tower to learn a
# text-only path for cold-start items without hurting memorisation of popular ones.
ITEM_ID_DROPOUT = 0.1


def build_pretrained_text_encoder(
    text_config: config_lib.TextEncoderConfig, spec: features.FeatureSpec, output_dim: int
) -> pretrained_text_encoder.PretrainedTextEncoder:
    """The shared text encoder of modes frozen and finetune: the preset's BERT, cached per item.

    Raises:
        errors.ConfigError: The preset is missing (see `presets.resolve`).
        ValueError: `spec.wordpiece` is not the preset's vocabulary, or the preset handles
            fewer tokens than the feature spec's texts (+ [CLS] and [SEP]).
    """
    directory = presets.resolve(text_config.preset)
    pretrained = presets.vocabulary(directory)
    if tuple(spec.wordpiece) != pretrained.tokens:
        raise ValueError(
            f"`spec.wordpiece` must be the vocabulary of `model.text_encoder.preset` in mode "
            f"{text_config.mode!r} (build the spec with that text config): expected the "
            f"preset's {len(pretrained.tokens)} tokens, received {len(spec.wordpiece)} others"
        )
    backbone = text_encoder.load_backbone_preset(directory, len(pretrained.tokens))
    longest = max(spec.text_length, spec.query_text_length) + 2
    if backbone.max_sequence_length < longest:
        raise ValueError(
            f"`model.text_encoder.preset` handles {backbone.max_sequence_length} tokens, "
            f"expected at least {longest} (the feature spec's text lengths + [CLS] and [SEP])"
        )
    return pretrained_text_encoder.PretrainedTextEncoder(
        backbone,
        output_dim,
        items=spec.items,
        text_length=spec.text_length,
        cls_token_id=pretrained.cls_token_id,
        sep_token_id=pretrained.sep_token_id,
        trainable_layers=text_config.trainable_layers if text_config.mode == "finetune" else 0,
        query_student_layers=text_config.query_student.layers,
        name="text_encoder",
    )


def build_text_encoder(
    text_config: config_lib.TextEncoderConfig, spec: features.FeatureSpec, output_dim: int
) -> tf.keras.Model | tf.keras.layers.Layer:
    """The shared text encoder: per `text_config.mode`, a BERT from scratch (or from a preset
    over the learned vocabulary), or a pretrained preset frozen or partly fine-tuned."""
    if text_config.mode != "scratch":
        return build_pretrained_text_encoder(text_config, spec, output_dim)
    vocabulary_size = len(spec.wordpiece)
    if text_config.preset:
        backbone = text_encoder.load_backbone_preset(text_config.preset, vocabulary_size)
        longest = max(spec.text_length, spec.query_text_length)
        if backbone.max_sequence_length < longest:
            raise ValueError(
                f"`model.text_encoder.preset` handles {backbone.max_sequence_length} tokens, "
                f"expected at least {longest} (the feature spec's text lengths)"
            )
    else:
        backbone = text_encoder.build_bert_backbone(
            vocabulary_size=vocabulary_size,
            max_sequence_length=max(spec.text_length, spec.query_text_length),
            num_layers=text_config.num_layers,
            num_heads=text_config.num_heads,
            hidden_dim=text_config.hidden_dim,
            intermediate_dim=text_config.intermediate_dim,
            dropout=text_config.dropout,
        )
    return text_encoder.build_text_encoder(backbone, output_dim)


def build_towers(
    model_config: config_lib.ModelConfig, spec: features.FeatureSpec
) -> tuple[tf.keras.Model, tf.keras.Model]:
    """Builds `(query_tower, candidate_tower)` sharing one text encoder when `use_text`."""
    dim = model_config.embedding_dim
    shared_text = (
        build_text_encoder(model_config.text_encoder, spec, dim) if model_config.use_text else None
    )
    history = history_encoder.build_history_encoder(
        items=spec.items,
        event_types=spec.event_types,
        max_history=spec.max_history,
        output_dim=dim,
        kind=model_config.history_encoder,
        num_heads=model_config.text_encoder.num_heads,
        dropout=model_config.text_encoder.dropout,
    )
    query = query_tower.build_query_tower(
        users=spec.users,
        max_history=spec.max_history,
        query_text_length=spec.query_text_length,
        embedding_dim=dim,
        id_embedding_dim=model_config.id_embedding_dim,
        history_encoder=history,
        text_encoder=shared_text,
        hidden_units=(2 * dim,),
    )
    candidate = candidate_tower.build_candidate_tower(
        items=spec.items,
        categories=spec.categories,
        text_length=spec.text_length,
        embedding_dim=dim,
        id_embedding_dim=model_config.id_embedding_dim,
        text_encoder=shared_text,
        use_item_ids=model_config.use_item_ids,
        use_category_and_price=model_config.use_text,
        item_id_dropout=ITEM_ID_DROPOUT if model_config.use_text else 0.0,
        hidden_units=(2 * dim,),
    )
    return query, candidate


def build_retrieval_model(
    model_config: config_lib.ModelConfig,
    spec: features.FeatureSpec,
    item_counts: Sequence[float] | np.ndarray,
) -> retrieval.RetrievalModel:
    """The main two-tower model described by `model_config`, over `spec`'s vocabularies.

    Args:
        model_config: ModelConfig.
        spec: FeatureSpec of the training split.
        item_counts: training interactions per item, aligned with `spec.items`.
    """
    if len(item_counts) != len(spec.items):
        raise ValueError(
            f"`item_counts` must align with `spec.items`: expected {len(spec.items)} counts, "
            f"received {len(item_counts)}"
        )
    query, candidate = build_towers(model_config, spec)
    return retrieval.RetrievalModel(
        query,
        candidate,
        item_ids=spec.items,
        item_counts=item_counts,
        temperature=model_config.temperature,
        logq_correction=model_config.logq_correction,
        remove_accidental_hits=model_config.remove_accidental_hits,
        num_hard_negatives=model_config.num_hard_negatives,
    )


def build_id_two_tower(
    spec: features.FeatureSpec,
    embedding_dim: int,
    item_counts: Sequence[float] | np.ndarray,
    temperature: float | None = None,
    logq_correction: bool = True,
    remove_accidental_hits: bool = True,
) -> retrieval.RetrievalModel:
    """The baseline of the TFRS retrieval tutorial: user-id and item-id embeddings only.

    No text, history, time, category or price, no hidden layers, unnormalized dot products.
    Its towers take the same inputs as the main model's, so training, evaluation and export
    code treat both alike. Loss options default to log-Q correction and accidental-hit removal
    (cheap and fairer to compare with the main model); pass False to get the tutorial exactly.
    """
    query = query_tower.build_query_tower(
        users=spec.users,
        max_history=spec.max_history,
        query_text_length=spec.query_text_length,
        embedding_dim=embedding_dim,
        id_embedding_dim=embedding_dim,
        use_time=False,
        hidden_units=(),
        normalize=False,
    )
    candidate = candidate_tower.build_candidate_tower(
        items=spec.items,
        categories=spec.categories,
        text_length=spec.text_length,
        embedding_dim=embedding_dim,
        id_embedding_dim=embedding_dim,
        use_category_and_price=False,
        hidden_units=(),
        normalize=False,
    )
    return retrieval.RetrievalModel(
        query,
        candidate,
        item_ids=spec.items,
        item_counts=item_counts,
        temperature=temperature,
        logq_correction=logq_correction,
        remove_accidental_hits=remove_accidental_hits,
    )
