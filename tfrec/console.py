"""What a command prints: quiet by default, JSON-only stdout on request, a clean process exit."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO

# Libraries whose import-time and per-call chatter (deprecations, "Using TensorFlow backend",
# oneDNN and CUDA probing lines) says nothing about the user's data or model.
_NOISY_MODULES = (
    r"(tensorflow|tf_keras|keras_nlp|keras_core|tensorflow_recommenders|"
    r"tensorflow_model_optimization|tensorflow_text|google\.protobuf|absl)"
)


def quiet(verbose: bool = False, loads_models: bool = True) -> None:
    """Silences TensorFlow's, Keras' and KerasNLP's logs and warnings unless `verbose`.

    Must run before TensorFlow is imported for the C++ part: `TF_CPP_MIN_LOG_LEVEL` is read
    once, when the library loads. Errors that concern the command still surface as exceptions.

    Args:
        verbose: bool. Keep every log line (TensorFlow's C++ INFO and up). Defaults to False.
        loads_models: bool. The command will load KerasNLP anyway: import it now, quietly.
            False for light commands (`tfrec recommend`, `tfrec data`) that never load
            TensorFlow. Defaults to True.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=_NOISY_MODULES)
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if loads_models and "keras_nlp" not in sys.modules:
        # keras-nlp pulls in keras-core, which prints "Using TensorFlow backend" to stdout at
        # import; importing it here, with stdout captured, keeps that line out of every output.
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                import keras_nlp  # noqa: F401
            except ImportError:
                pass


@contextlib.contextmanager
def stdout_for_json() -> Iterator[TextIO]:
    """Sends everything printed inside to stderr; yields the real stdout for the JSON alone.

    Progress lines and tables stay visible on the terminal while `cmd --json | jq` reads only
    the document.
    """
    real = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield real


def exit_process(code: int) -> None:
    """Flushes every output and ends the process without interpreter teardown.

    TensorFlow's and gRPC's C++ worker threads can still run while the interpreter tears
    down; their destructors then race and may abort the process ("terminate called ...
    FATAL: exception not rethrown", exit 134) after the command finished its work. Everything
    a command writes is flushed or renamed into place before it returns, so skipping the
    teardown loses nothing and the exit code is the command's own.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
