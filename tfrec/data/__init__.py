"""Data layer: loaders into one canonical schema, temporal split, tf.data pipelines."""
