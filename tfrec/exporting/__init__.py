"""Exporting: TF Serving SavedModels (retrieve, rank, recommend), warmup and cold-start items."""

# Import submodules explicitly (e.g. `from tfrec.exporting import signatures`): each imports
# TensorFlow, and `tfrec recommend` needs none of them.
