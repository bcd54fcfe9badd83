"""Exporting: TF Serving SavedModels (retrieve, rank, recommend), warmup and cold-start items."""

# Import submodules explicitly (e.g. `from tfrec.exporting import run`): each imports
# TensorFlow, and `tfrec recommend` needs none of them.
