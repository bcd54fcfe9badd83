"""SavedModel versions in TF Serving's layout, each written beside its target and renamed in."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Optional

import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors
from tfrec.exporting import warmup

ASSETS_EXTRA = "assets.extra"
TFREC_ASSETS = "assets.extra/tfrec"  # resolved config, feature spec, item index, export.json
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def versions(model_dir: os.PathLike | str) -> list[int]:
    """Complete versions under `model_dir`: integer folders holding a saved_model.pb."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in model_dir.iterdir()
        if p.name.isdigit() and any((p / f).is_file() for f in SAVED_MODEL_FILES)
    )


def next_version(export_dir: os.PathLike | str, model_names: Iterable[str]) -> int:
    """One more than the newest version of any of `model_names` (1 for a new export dir)."""
    found = [v for name in model_names for v in versions(Path(export_dir) / name)]
    return max(found, default=0) + 1


def check_version(version, export_dir, model_names: Iterable[str]) -> int:
    """`version` if it is a positive int not used by any of `model_names`, else ConfigError."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise errors.ConfigError(f"`--version` must be a positive int, received {version!r}")
    for name in model_names:
        path = Path(export_dir) / name / str(version)
        if path.exists():
            raise errors.ConfigError(
                f"`--version` {version} already exists at `{path}`; expected a new version "
                f"(default: {next_version(export_dir, model_names)})"
            )
    return version


def write_atomically(model_dir: os.PathLike | str, version: int, fill: Callable[[Path], None]):
    """Runs `fill(tmp)` on a hidden folder beside `model_dir/<version>`, then renames it in.

    A server polling `model_dir` only looks at integer-named folders, and a rename within one
    file system is atomic: it sees no version or a complete one. On any error the temporary
    folder is removed and nothing is left behind.

    Returns:
        Path of the new version folder.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / str(version)
    if final.exists():
        raise errors.ConfigError(f"`version` {version} already exists at `{final}`")
    tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".tmp-{version}-"))
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a server may run as another user
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def save_module(
    path: Path,
    module,
    model_name: str,
    requests: Mapping[str, dict],
    config: Optional[config_lib.Config] = None,
    spec=None,
    index=None,
    info: Optional[dict] = None,
) -> None:
    """Saves a ServingModule with its warmup records and tfrec assets into `path`.

    Args:
        path: Path. An empty folder (the temporary version folder).
        module: ServingModule.
        model_name: str. Written into the warmup requests' model spec.
        requests: dict signature name -> inputs (NumPy), replayed as warmup by the server.
        config: Config or None. The resolved run config (assets.extra/tfrec/config.yaml).
        spec: FeatureSpec or None. Saved under assets.extra/tfrec/spec/.
        index: ItemIndex or None. Saved under assets.extra/tfrec/ (titles, vectors).
        info: dict or None. Written as assets.extra/tfrec/export.json.
    """
    signatures = module.signatures()
    tf.saved_model.save(module, str(path), signatures=signatures)
    extra = path / TFREC_ASSETS
    extra.mkdir(parents=True)
    warmup.write_records(path / warmup.WARMUP_FILE, model_name, requests)
    if config is not None:
        (extra / "config.yaml").write_text(config_lib.dump(config), encoding="utf-8")
    if spec is not None:
        spec.save(extra / "spec")
    if index is not None:
        index.save(extra)
    meta = dict(info or {}, model_name=model_name, signatures=sorted(signatures))
    (extra / "export.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def copy_saved_model(source: Path, target: Path) -> None:
    """Copies a finished SavedModel folder (e.g. a compressed variant) into `target`."""
    if not any((source / f).is_file() for f in SAVED_MODEL_FILES):
        raise errors.WorkdirError(f"`{source}` is not a SavedModel: no saved_model.pb")
    shutil.copytree(source, target, dirs_exist_ok=True)
