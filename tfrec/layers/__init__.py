"""Reusable layers and sub-models: masks, pooling, id dropout, text and history encoders."""

from tfrec.layers import history_encoder, id_dropout, masking, pooling, text_encoder

__all__ = ["history_encoder", "id_dropout", "masking", "pooling", "text_encoder"]
