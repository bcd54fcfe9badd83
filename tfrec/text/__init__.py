"""Pretrained language models for the item tower: Hugging Face BERT import and the default model."""

# Importing the package registers `tfrec>HfBertBackbone`, the class imported presets name in
# their config.json: `keras_nlp.models.BertBackbone.from_preset` needs it registered.
from tfrec.text import hf_bert_backbone  # noqa: F401
