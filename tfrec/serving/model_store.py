"""Loads model versions by policy, polls for new or removed ones and swaps them in live."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from tfrec.serving import model_config, servable, status, warmup

log = logging.getLogger(__name__)


@dataclasses.dataclass
class VersionState:
    """A version's lifecycle state, named as in TF Serving's ModelVersionStatus."""

    version: int
    state: str  # START | LOADING | AVAILABLE | UNLOADING | END
    error_code: str = "OK"
    error_message: str = ""


@dataclasses.dataclass
class _Model:
    spec: model_config.ModelSpec
    live: dict = dataclasses.field(default_factory=dict)  # version -> Servable
    states: dict = dataclasses.field(default_factory=dict)  # version -> VersionState
    failed: dict = dataclasses.field(default_factory=dict)  # version -> saved_model mtime


class ModelStore:
    """The served models: each model's live versions, looked up by version or label.

    Versions load fully (and replay their warmup requests) before a reference swap makes them
    live; replaced versions unload once their in-flight requests have finished.

    Args:
        model_base_path: path. One folder per model, or one model's version folders.
        config_file: path or None. A `models.config` (ModelServerConfig text proto).
        model_name: str or None. Name of the model when `model_base_path` holds versions.
        poll_seconds: float. File-system poll period; 0 loads once and never polls.
        warmup_iterations: int. Replays of each warmup record. Defaults to 1.
    """

    def __init__(
        self,
        model_base_path,
        config_file=None,
        model_name: Optional[str] = None,
        poll_seconds: float = 1.0,
        warmup_iterations: int = 1,
    ):
        self.model_base_path = Path(model_base_path)
        self.config_file = config_file
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self.warmup_iterations = warmup_iterations
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Loads every model once (synchronously), then polls in a background thread."""
        self.poll_once()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="model-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 (a bad poll must not kill the server)
                log.exception("model poll failed")

    def poll_once(self) -> None:
        """Brings every model's live versions in line with the disk and the version policy."""
        with self._reconcile_lock:
            specs = model_config.discover(self.model_base_path, self.config_file, self.model_name)
            with self._lock:
                for spec in specs:
                    model = self._models.setdefault(spec.name, _Model(spec))
                    model.spec = spec
            for spec in specs:
                self._reconcile(self._models[spec.name])

    def _reconcile(self, model: _Model) -> None:
        spec = model.spec
        desired = spec.select(model_config.list_versions(spec.base_path))
        loaded = {}
        for version in desired:
            if version in model.live:
                continue
            path = spec.base_path / str(version)
            stamp = _mtime(path)
            if model.failed.get(version) == stamp:
                continue  # already failed on these exact files; retry only if they change
            model.states[version] = VersionState(version, "LOADING")
            try:
                loaded[version] = servable.Servable(spec.name, version, path)
                replayed = warmup.run(loaded[version], self.warmup_iterations)
            except Exception as e:  # noqa: BLE001 (any load failure is reported in status)
                loaded.pop(version, None)
                model.failed[version] = stamp
                model.states[version] = VersionState(version, "END", "UNKNOWN", str(e)[:1000])
                log.error("model %s version %s failed to load: %s", spec.name, version, e)
                continue
            log.info("loaded model %s version %s (%d warmup records)", spec.name, version, replayed)
        with self._lock:
            live = {
                v: model.live.get(v) or loaded[v] for v in desired if v in model.live or v in loaded
            }
            if not live:
                # Availability first: keep serving old versions that are still on disk when
                # none of the desired ones could load.
                live = {v: s for v, s in model.live.items() if (spec.base_path / str(v)).is_dir()}
            retired = [s for v, s in model.live.items() if v not in live]
            model.live = live
            for version in live:
                model.states[version] = VersionState(version, "AVAILABLE")
            for old in retired:
                model.states[old.version] = VersionState(old.version, "END")
        for old in retired:
            log.info("unloading model %s version %s", old.name, old.version)
            old.retire()

    def _resolve(self, name: str, version: Optional[int], label: Optional[str]) -> tuple:
        model = self._models.get(name)
        if model is None:
            raise status.not_found(
                f"`model_spec.name`: model `{name}` is not served; served models are "
                f"{sorted(self._models)}"
            )
        if label:
            if label not in model.spec.labels:
                raise status.not_found(
                    f"`model_spec.version_label`: unknown label `{label}` of model `{name}`; "
                    f"known labels are {sorted(model.spec.labels)}"
                )
            version = model.spec.labels[label]
        return model, version

    def acquire(self, name: str, version: Optional[int] = None, label: Optional[str] = None):
        """The Servable for a request, counted in-flight until `release`. NOT_FOUND if none."""
        with self._lock:
            model, version = self._resolve(name, version, label)
            if version is None:
                if not model.live:
                    raise status.not_found(f"`model_spec.name`: model `{name}` has no version")
                version = max(model.live)
            found = model.live.get(version)
            if found is None or not found.acquire():
                raise status.not_found(
                    f"`model_spec.version`: version {version} of model `{name}` is not "
                    f"available; available versions are {sorted(model.live)}"
                )
            return found

    @contextlib.contextmanager
    def use(self, name: str, version=None, label=None) -> Iterator[servable.Servable]:
        found = self.acquire(name, version, label)
        try:
            yield found
        finally:
            found.release()

    def status(self, name: str, version=None, label=None) -> list[VersionState]:
        """Version states of a model, newest first (one version when `version`/`label` is set)."""
        with self._lock:
            model, version = self._resolve(name, version, label)
            states = sorted(model.states.values(), key=lambda s: -s.version)
            if version is None:
                return [dataclasses.replace(s) for s in states]
            chosen = [dataclasses.replace(s) for s in states if s.version == version]
            if not chosen:
                raise status.not_found(
                    f"`model_spec.version`: version {version} of model `{name}` is unknown; "
                    f"known versions are {sorted(model.states)}"
                )
            return chosen

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)


def _mtime(path: Path) -> float:
    try:
        return max(p.stat().st_mtime for p in [path, *path.iterdir()])
    except OSError:
        return -1.0
