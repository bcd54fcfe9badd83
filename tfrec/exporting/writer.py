"""SavedModel versions in TF Serving's layout, each written beside its target and renamed in.

Several models of one export (`tfrec`, `tfrec_text`, compressed variants) are committed as one
step: every version is staged in a temporary folder first; only when all are complete is a
commit journal written and the folders renamed into place; a commit cut short is finished by
the next export (`recover`), so no version of one model stays without its siblings.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Optional

from tfrec import config as config_lib
from tfrec import errors

ASSETS_EXTRA = "assets.extra"
TFREC_ASSETS = "assets.extra/tfrec"  # resolved config, feature spec, item index, export.json
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# Names only tfrec's writers use, so `recover` removes nothing it did not write. Servers skip
# them: they load integer-named folders only.
TMP_PREFIX = ".tfrec-tmp-"  # a version being written: `<model>/.tfrec-tmp-<version>-<random>`
JOURNAL = ".tfrec-commit.json"  # the renames of a commit in progress
LOCK = ".tfrec-export.lock"  # held by the export writing to the folder
SERVER_CONFIG_FILES = ("models.config", "batching_parameters.txt", "monitoring.config")
LABELS_FILE = "labels.json"  # the label state (`tfrec.exporting.labels`)


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
    tmp = _stage(model_dir, version, fill)
    try:
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _stage(model_dir: Path, version: int, fill: Callable[[Path], None]) -> Path:
    """Runs `fill(tmp)` on a new temporary folder in `model_dir`; removes it on any error."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=f"{TMP_PREFIX}{version}-"))
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a server may run as another user
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


@contextlib.contextmanager
def export_lock(export_dir: os.PathLike | str) -> Iterator[Path]:
    """Holds the export folder's lock: one export writes to a folder at a time.

    The lock is an `flock` on `<export_dir>/.tfrec-export.lock`, released by the kernel when
    its process dies, so a killed export never leaves the folder locked.

    Raises:
        ConfigError: when another export holds the lock.
    """
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    with open(export_dir / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise errors.ConfigError(
                f"`--export-dir` {str(export_dir)!r} is being written by another export, "
                f"promote or rollback (it holds `{LOCK}`); expected one at a time"
            ) from None
        try:
            yield export_dir
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_versions(
    export_dir: os.PathLike | str, version: int, fills: Mapping[str, Callable[[Path], None]]
) -> dict[str, Path]:
    """Writes `version` of every model in `fills` as one step; call it holding `export_lock`.

    Each `fill(tmp)` writes one model's version into a temporary folder of its model folder.
    Only once all are complete are they renamed into place, after a journal of the renames is
    written: a process killed during the renames leaves the journal, and `recover` (run by the
    next export) finishes them. A server polling the folder therefore sees each version only
    once it and all its siblings are complete. On an error before the renames, every
    temporary folder is removed and nothing is left behind.

    Args:
        export_dir: path. The folder of model folders.
        version: int. The version number of every model.
        fills: dict model name -> callable writing one SavedModel version into a folder.

    Returns:
        dict model name -> Path of its new version folder.
    """
    export_dir = Path(export_dir)
    finals = {name: export_dir / name / str(version) for name in fills}
    for final in finals.values():
        if final.exists():
            raise errors.ConfigError(f"`version` {version} already exists at `{final}`")
    staged: dict[str, Path] = {}
    try:
        for name, fill in fills.items():
            staged[name] = _stage(export_dir / name, version, fill)
        journal = {
            "version": version,
            "renames": [
                [str(staged[n].relative_to(export_dir)), n + "/" + str(version)] for n in fills
            ],
        }
        config_lib.write_text_atomic(export_dir / JOURNAL, json.dumps(journal, indent=2))
    except BaseException:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    _finish_commit(export_dir)
    return finals


def _finish_commit(export_dir: Path) -> list[str]:
    """Performs the renames of the journal still to do, then removes it; the renamed targets."""
    journal = json.loads((export_dir / JOURNAL).read_text(encoding="utf-8"))
    done = []
    for source, target in journal["renames"]:
        if (export_dir / source).is_dir() and not (export_dir / target).exists():
            os.rename(export_dir / source, export_dir / target)
            done.append(target)
    os.unlink(export_dir / JOURNAL)
    return done


def recover(export_dir: os.PathLike | str) -> dict:
    """Puts an export folder left by a killed export back in order; call it holding the lock.

    Finishes a commit whose journal is left (its versions were complete before any rename),
    then removes tfrec's own temporary folders (`<model>/.tfrec-tmp-*`) and the temporary
    files of the server configs and the journal. Anything else is left alone.

    Returns:
        dict: `committed`, the version folders renamed in; `removed`, the paths removed.
    """
    export_dir = Path(export_dir)
    committed = _finish_commit(export_dir) if (export_dir / JOURNAL).is_file() else []
    removed = []
    for child in sorted(export_dir.iterdir()) if export_dir.is_dir() else []:
        if child.is_dir() and not child.is_symlink():
            for tmp in sorted(child.glob(TMP_PREFIX + "*")):
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp)
                    removed.append(str(tmp))
        elif child.is_file() and any(
            child.name.startswith(f".{name}.")
            for name in (*SERVER_CONFIG_FILES, LABELS_FILE, JOURNAL)
        ):
            # `config.write_text_atomic`'s temporary files: `.<name>.<random>`.
            child.unlink()
            removed.append(str(child))
    return {"committed": committed, "removed": removed}


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
    # Imported here so that `tfrec promote` and `tfrec rollback`, which use this module's
    # folder layout and lock but write no model, start without loading TensorFlow (seconds).
    import tensorflow as tf

    from tfrec.exporting import warmup

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
