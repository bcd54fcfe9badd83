"""The files beside the versions: models.config, batching_parameters.txt, monitoring.config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from google.protobuf import text_encoding

from tfrec import config as config_lib
from tfrec import errors
from tfrec.exporting import labels, writer

BATCHING_PARAMETERS = """\
# TF Serving batching parameters (text proto) for `tensorflow_model_server --enable_batching
# --batching_parameters_file=...`; `tfrec serve` reads it from the export folder.
# A short timeout keeps p99 low at light load and merges concurrent requests under load.
# Every input of tfrec's signatures is batch-major (`k` and `exclude_recent` are per row).
# The official server pads narrower `history_*` lists with each request's first element, not
# "": send them at one fixed width for exact results (see serving/README.md).
max_batch_size { value: 64 }
batch_timeout_micros { value: 2000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 100 }
pad_variable_length_inputs: true
"""

MONITORING = """\
# MonitoringConfig (text proto) for `tensorflow_model_server --monitoring_config_file=...`;
# `tfrec serve` reads it from the export folder: Prometheus metrics on the REST port.
prometheus_config {
  enable: true
  path: "/monitoring/prometheus/metrics"
}
"""


def check_base_prefix(base_prefix: Optional[str]) -> Optional[str]:
    """`base_prefix` if it is None or an absolute path, else ConfigError."""
    if base_prefix is not None and not str(base_prefix).startswith("/"):
        raise errors.ConfigError(
            "`--base-prefix` must be an absolute path (tensorflow_model_server needs absolute "
            f"base paths), e.g. '/models', received {base_prefix!r}"
        )
    return base_prefix


def models_config(
    export_dir: os.PathLike | str,
    base_prefix: Optional[str] = None,
    state: Optional[labels.LabelState] = None,
) -> str:
    """A ModelServerConfig for every labelled model folder under `export_dir`.

    Each model serves exactly the versions its labels `stable` and `canary` name, plus the
    version `tfrec rollback` would move `stable` back to (kept loaded so a rollback moves the
    label to an available version at once), with a `specific` version policy: a labelled
    version is never unloaded. Labels come from the label state (`labels.json`); a label
    naming a version that is not complete on disk (a folder removed by hand) is left out, as
    tensorflow_model_server refuses a label of a version it cannot load. Base paths are
    absolute, as tensorflow_model_server needs: `<export_dir>/<name>` by default, or
    `<base_prefix>/<name>` for a server that mounts the folder elsewhere (e.g. `/models` in a
    container); `tfrec serve` falls back to the model folder beside the config file when a
    configured path does not exist.

    Args:
        export_dir: path. The folder of model folders the config describes.
        base_prefix: str or None. The folder's absolute path as the server sees it; None: the
            absolute path of `export_dir` here.
        state: LabelState or None. The labels; None: `export_dir`'s `labels.json`, with model
            folders it does not know adopted (`labels.adopt`, not saved).
    """
    export_dir = Path(export_dir)
    prefix = check_base_prefix(base_prefix) or str(export_dir.resolve())
    if state is None:
        state = labels.load(export_dir)
        labels.adopt(state, export_dir)
    blocks = []
    for name in sorted(state.models):
        found = writer.versions(export_dir / name)
        served = [v for v in state.served_versions(name) if v in found]
        if not served:
            continue
        base_path = text_encoding.CEscape(f"{prefix.rstrip('/')}/{name}", as_utf8=True)
        named = state.labels(name)
        blocks.append(
            "  config {\n"
            f'    name: "{text_encoding.CEscape(name, as_utf8=True)}"\n'
            f'    base_path: "{base_path}"\n'
            '    model_platform: "tensorflow"\n'
            "    model_version_policy { specific { "
            + " ".join(f"versions: {v}" for v in served)
            + " } }\n"
            + "".join(
                f'    version_labels {{ key: "{label}" value: {named[label]} }}\n'
                for label in labels.LABELS
                if named.get(label) in found
            )
            + "  }\n"
        )
    header = (
        "# Written by `tfrec export`, `tfrec promote` and `tfrec rollback` from labels.json (the\n"
        "# label state and its history): each model serves its `stable` and `canary` versions and\n"
        "# the version a rollback returns to. Edit labels with those commands, not here.\n"
    )
    return header + "model_config_list {\n" + "".join(blocks) + "}\n"


def write_models_config(
    export_dir: os.PathLike | str, base_prefix: Optional[str], state: labels.LabelState
) -> None:
    """(Re)writes models.config from `state` atomically."""
    export_dir = Path(export_dir)
    _write_readable(export_dir / "models.config", models_config(export_dir, base_prefix, state))


def write(
    export_dir: os.PathLike | str,
    base_prefix: Optional[str] = None,
    state: Optional[labels.LabelState] = None,
) -> None:
    """(Re)writes models.config, batching_parameters.txt and monitoring.config atomically.

    Each file is written to a temporary file and renamed over the old one, so a server
    re-reading it sees the old or the new content, never a part.
    """
    export_dir = Path(export_dir)
    text = models_config(export_dir, base_prefix, state)
    _write_readable(export_dir / "models.config", text)
    _write_readable(export_dir / "batching_parameters.txt", BATCHING_PARAMETERS)
    _write_readable(export_dir / "monitoring.config", MONITORING)


def _write_readable(path: Path, text: str) -> None:
    """Writes `path` atomically and readable by all: a server may run as another user."""
    config_lib.write_text_atomic(path, text, mode=0o644)  # its temporaries: what `recover` removes
