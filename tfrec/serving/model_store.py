"""Loads model versions by policy, polls for new or removed ones and swaps them in live."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from tfrec import errors
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
    failed: dict = dataclasses.field(default_factory=dict)  # version path -> saved_model mtime
    labels: dict = dataclasses.field(default_factory=dict)  # label -> version, as applied
    label_error: str = ""  # why spec.labels are not applied yet (logged once)
    dangling: tuple = ()  # (label, version) pairs whose version went away, as last logged


class ModelStore:
    """The served models: each model's live versions, looked up by version or label.

    Versions load fully (and replay their warmup requests) before a reference swap makes them
    live; replaced versions unload once their in-flight requests have finished. `config_file` is
    read at start and, with `config_poll_seconds`, re-read while serving: a changed valid config
    adds and removes models and changes policies and labels; an invalid one is logged and the
    current one kept. As in TF Serving, a label moves only to an available version: until the
    version it names is live, the model keeps its previous labels (retried on every poll).
    When the version a label names goes away (its folder removed, or dropped by the policy),
    a warning is logged once and requests for the label are served by the newest available
    version until the label is moved or the version returns.

    Args:
        model_base_path: path. One folder per model, or one model's version folders.
        config_file: path or None. A `models.config` (ModelServerConfig text proto).
        model_name: str or None. Name of the model when `model_base_path` holds versions.
        poll_seconds: float. File-system poll period; 0 loads once and never polls.
        warmup_iterations: int. Replays of each warmup record. Defaults to 1.
        config_poll_seconds: float. Period of re-reading `config_file`; 0 (the default, as
            tensorflow_model_server's `--model_config_file_poll_wait_seconds`) never re-reads.
    """

    def __init__(
        self,
        model_base_path,
        config_file=None,
        model_name: Optional[str] = None,
        poll_seconds: float = 1.0,
        warmup_iterations: int = 1,
        config_poll_seconds: float = 0.0,
    ):
        self.model_base_path = Path(model_base_path)
        self.config_file = config_file
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self.warmup_iterations = warmup_iterations
        self.config_poll_seconds = config_poll_seconds
        self._config_specs: list = []  # the applied models.config (unused without config_file)
        self._config_error = ""  # the last reload error, logged once
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Loads every model once (synchronously), then polls in background threads.

        Raises:
            ConfigError: when `config_file` is invalid (there is no previous config to keep).
        """
        if self.config_file is not None:
            self._config_specs = self._read_config()
        self.poll_once()
        for seconds, poll, name in (
            (self.poll_seconds, self.poll_once, "model-poll"),
            (
                self.config_poll_seconds if self.config_file else 0,
                self.reload_config,
                "config-poll",
            ),
        ):
            if seconds > 0:
                thread = threading.Thread(
                    target=self._poll_loop, args=(seconds, poll), name=name, daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _poll_loop(self, seconds: float, poll) -> None:
        while not self._stop.wait(seconds):
            try:
                poll()
            except Exception:  # noqa: BLE001 (a bad poll must not kill the server)
                log.exception("%s failed", poll.__name__)

    def _read_config(self) -> list:
        return model_config.discover(self.model_base_path, self.config_file, self.model_name)

    def reload_config(self) -> bool:
        """Re-reads `config_file` and applies it if it changed; True if it was applied.

        An unreadable or invalid file is logged and the current config keeps serving.
        """
        try:
            specs = self._read_config()
        except (errors.ConfigError, OSError) as e:
            message = f"{self.config_file} not applied, the previous config keeps serving: {e}"
            if message != self._config_error:  # once per distinct error, not on every poll
                log.error("%s", message)
                self._config_error = message
            return False
        self._config_error = ""
        with self._reconcile_lock:
            if specs == self._config_specs:
                return False
            self._config_specs = specs
        log.info("applying the changed %s", self.config_file)
        self.poll_once()
        return True

    def poll_once(self) -> None:
        """Brings every model's live versions in line with the disk, the config and its policy."""
        with self._reconcile_lock:
            if self.config_file is None:
                specs = self._read_config()  # every model folder, found anew on each poll
            else:
                specs = self._config_specs
            with self._lock:
                for spec in specs:
                    model = self._models.setdefault(spec.name, _Model(spec))
                    model.spec = spec
                removed = [self._models.pop(n) for n in set(self._models) - {s.name for s in specs}]
            for spec in specs:
                self._reconcile(self._models[spec.name])
                self._apply_labels(self._models[spec.name])
            for model in removed:
                log.info("model %s is no longer configured: unloading it", model.spec.name)
                for old in model.live.values():
                    old.retire()  # in-flight requests finish first (Servable counts them)

    def _reconcile(self, model: _Model) -> None:
        spec = model.spec
        desired = spec.select(model_config.list_versions(spec.base_path))
        # A changed base_path makes same-numbered versions new ones.
        current = {v: s for v, s in model.live.items() if s.path == spec.base_path / str(v)}
        loaded = {}
        for version in desired:
            if version in current:
                continue
            path = spec.base_path / str(version)
            stamp = _mtime(path)
            if model.failed.get(path) == stamp:
                continue  # already failed on these exact files; retry only if they change
            with self._lock:  # status and metrics read states concurrently
                model.states[version] = VersionState(version, "LOADING")
            try:
                loaded[version] = servable.Servable(spec.name, version, path)
                replayed = warmup.run(loaded[version], self.warmup_iterations)
            except Exception as e:  # noqa: BLE001 (any load failure is reported in status)
                loaded.pop(version, None)
                model.failed[path] = stamp
                with self._lock:
                    model.states[version] = VersionState(version, "END", "UNKNOWN", str(e)[:1000])
                log.error("model %s version %s failed to load: %s", spec.name, version, e)
                continue
            log.info("loaded model %s version %s (%d warmup records)", spec.name, version, replayed)
        with self._lock:
            live = {v: current.get(v) or loaded[v] for v in desired if v in current or v in loaded}
            if not live:
                # Availability first: keep serving old versions that are still on disk when
                # none of the desired ones could load.
                live = {v: s for v, s in model.live.items() if s.path.is_dir()}
            retired = [s for s in model.live.values() if live.get(s.version) is not s]
            model.live = live
            for version in live:
                model.states[version] = VersionState(version, "AVAILABLE")
            for old in retired:
                if old.version not in live:
                    model.states[old.version] = VersionState(old.version, "END")
        for old in retired:
            log.info("unloading model %s version %s", old.name, old.version)
            old.retire()

    def _apply_labels(self, model: _Model) -> None:
        self._warn_dangling_labels(model)
        wanted = dict(model.spec.labels)
        if wanted == model.labels:
            return
        missing = {label: v for label, v in sorted(wanted.items()) if v not in model.live}
        if missing:
            message = (
                f"models.config: `version_labels` of model `{model.spec.name}` not applied, "
                f"keeping {dict(sorted(model.labels.items()))}: "
                + ", ".join(f"`{label}` names version {v}" for label, v in missing.items())
                + f", expected an available version {sorted(model.live)}"
            )
            if message != model.label_error:  # a label waiting for a version: log once
                log.error("%s", message)
                model.label_error = message
            return
        with self._lock:
            model.labels = wanted
        model.label_error = ""
        log.info("model %s labels: %s", model.spec.name, wanted)

    def _warn_dangling_labels(self, model: _Model) -> None:
        with self._lock:
            dangling = tuple(sorted((k, v) for k, v in model.labels.items() if v not in model.live))
            newest = max(model.live) if model.live else None
        if dangling and dangling != model.dangling:
            for label, version in dangling:
                log.warning(
                    "model %s: label `%s` names version %s, which is no longer available; "
                    "requests for `%s` are served by the newest available version %s until the "
                    "label is moved or version %s returns",
                    model.spec.name, label, version, label, newest, version,
                )  # fmt: skip
        model.dangling = dangling

    def _resolve(self, name: str, version: Optional[int], label: Optional[str]) -> tuple:
        model = self._models.get(name)
        if model is None:
            raise status.not_found(
                f"`model_spec.name`: model `{name}` is not served; served models are "
                f"{sorted(self._models)}"
            )
        if label:
            if label not in model.labels:
                raise status.not_found(
                    f"`model_spec.version_label`: unknown label `{label}` of model `{name}`; "
                    f"known labels are {sorted(model.labels)}"
                )
            version = model.labels[label]
        return model, version

    def acquire(self, name: str, version: Optional[int] = None, label: Optional[str] = None):
        """The Servable for a request, counted in-flight until `release`. NOT_FOUND if none."""
        with self._lock:
            model, version = self._resolve(name, version, label)
            if label and version not in model.live and model.live:
                version = max(model.live)  # the label's version went away (class docstring)
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

    def labels(self, name: str) -> dict:
        """The version labels of model `name` as applied (see the class docstring)."""
        with self._lock:
            model, _ = self._resolve(name, None, None)
            return dict(model.labels)

    def found_versions(self) -> bool:
        """Whether any model has a version folder its policy selects (loaded or failed)."""
        with self._lock:
            return any(m.states for m in self._models.values())

    def model_paths(self) -> dict:
        """Each model's name and the folder its versions are looked for in."""
        with self._lock:
            return {n: m.spec.base_path for n, m in sorted(self._models.items())}

    def version_states(self) -> list[tuple]:
        """(model name, version, state) of every known version, for monitoring."""
        with self._lock:
            return [
                (n, s.version, s.state) for n, m in self._models.items() for s in m.states.values()
            ]

    def has_signature(self, name: str, signature_name: str) -> bool:
        """Whether a live version of model `name` has `signature_name`."""
        with self._lock:
            model = self._models.get(name)
            return model is not None and any(
                signature_name in s.signature_defs for s in model.live.values()
            )


def _mtime(path: Path) -> float:
    try:
        return max(p.stat().st_mtime for p in [path, *path.iterdir()])
    except OSError:
        return -1.0
