"""Serving: a TF Serving-compatible development server, its client and a load tester."""

# Modules here load TensorFlow only after `tfrec/__init__.py` has run (it is the parent package),
# so TF_USE_LEGACY_KERAS=1 is always set first.
from tfrec.serving.client import Client
from tfrec.serving.server import RunningServer, add_arguments, main, run, start
from tfrec.serving.status import ServingError

__all__ = ["Client", "RunningServer", "ServingError", "add_arguments", "main", "run", "start"]
