"""The files beside the versions: models.config, batching_parameters.txt, monitoring.config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

from google.protobuf import text_encoding

from tfrec import errors
from tfrec.exporting import writer

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


def models_config(export_dir: os.PathLike | str, base_prefix: Optional[str] = None) -> str:
    """A ModelServerConfig for every model folder under `export_dir` that holds versions.

    Each model serves its two newest versions, labelled `canary` (newest) and `stable` (the
    one before; the newest when there is only one), so a new export can take a share of
    traffic by label before it becomes stable. Labels name only versions found complete on
    disk. Base paths are absolute, as tensorflow_model_server needs: `<export_dir>/<name>`
    by default, or `<base_prefix>/<name>` for a server that mounts the folder elsewhere (e.g.
    `/models` in a container); `tfrec serve` falls back to the model folder beside the
    config file when a configured path does not exist.

    Args:
        export_dir: path. The folder of model folders the config describes.
        base_prefix: str or None. The folder's absolute path as the server sees it; None: the
            absolute path of `export_dir` here.
    """
    export_dir = Path(export_dir)
    prefix = check_base_prefix(base_prefix) or str(export_dir.resolve())
    blocks = []
    for child in sorted(export_dir.iterdir()) if export_dir.is_dir() else []:
        found = writer.versions(child)
        if not child.is_dir() or not found:
            continue
        newest = found[-1]
        stable = found[-2] if len(found) > 1 else newest
        base_path = text_encoding.CEscape(f"{prefix.rstrip('/')}/{child.name}", as_utf8=True)
        blocks.append(
            "  config {\n"
            f'    name: "{text_encoding.CEscape(child.name, as_utf8=True)}"\n'
            f'    base_path: "{base_path}"\n'
            '    model_platform: "tensorflow"\n'
            "    model_version_policy { latest { num_versions: 2 } }\n"
            f'    version_labels {{ key: "stable" value: {stable} }}\n'
            f'    version_labels {{ key: "canary" value: {newest} }}\n'
            "  }\n"
        )
    header = (
        "# Written by `tfrec export`: every model folder here, its two newest versions served,\n"
        "# labelled stable (previous) and canary (newest). Rewritten on every export, after all\n"
        "# models' new versions are in place.\n"
    )
    return header + "model_config_list {\n" + "".join(blocks) + "}\n"


def write(export_dir: os.PathLike | str, base_prefix: Optional[str] = None) -> None:
    """(Re)writes models.config, batching_parameters.txt and monitoring.config atomically.

    Each file is written to a temporary file and renamed over the old one, so a server
    re-reading it sees the old or the new content, never a part.
    """
    export_dir = Path(export_dir)
    text = models_config(export_dir, base_prefix)
    _write_readable(export_dir / "models.config", text)
    _write_readable(export_dir / "batching_parameters.txt", BATCHING_PARAMETERS)
    _write_readable(export_dir / "monitoring.config", MONITORING)


def _write_readable(path: Path, text: str) -> None:
    """Writes `path` atomically and readable by all: a server may run as another user."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # what `recover` removes
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
