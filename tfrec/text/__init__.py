"""Pretrained language models for the item tower: Hugging Face BERT import and the default model."""
