"""Version labels of an export folder as recorded state: `labels.json` and its history."""

from __future__ import annotations

import dataclasses
import datetime
import getpass
import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrec import config as config_lib
from tfrec import errors
from tfrec.exporting import writer

LABELS_FILE = writer.LABELS_FILE
STABLE = "stable"
CANARY = "canary"
LABELS = (STABLE, CANARY)
FORMAT = 1
# Why a label moved: adopted from an export folder written before labels.json existed, a new
# export (canary; stable too on a model's first), `tfrec promote`, `tfrec rollback`.
ACTIONS = ("adopt", "export", "promote", "rollback")


@dataclasses.dataclass(frozen=True)
class Change:
    """One move of one label: the unit of `labels.json`'s history.

    Args:
        time: str. UTC time of the move, ISO 8601 (`2024-01-03T12:00:00Z`).
        model: str. The model folder's name.
        label: str. `stable` or `canary`.
        from_version: int or None. The version the label named before; None: it was new.
        to_version: int. The version it names since.
        action: str. One of `ACTIONS`.
        who: str. `user@host` of the process that moved it.
        why: str. Free text: the command and its reason.
    """

    time: str
    model: str
    label: str
    from_version: Optional[int]
    to_version: int
    action: str
    who: str
    why: str

    def to_json(self) -> dict:
        return {
            "time": self.time,
            "model": self.model,
            "label": self.label,
            "from": self.from_version,
            "to": self.to_version,
            "action": self.action,
            "who": self.who,
            "why": self.why,
        }


@dataclasses.dataclass
class LabelState:
    """Which version each label of each model names, and every move that led there.

    `models.config` is rendered from it (`server_configs.models_config`); nothing else
    decides a label. A new export moves only `canary` (and `stable` on a model's first
    version); `stable` moves by `tfrec promote` and `tfrec rollback`.

    Args:
        models: dict model name -> dict label -> version.
        history: list of Change, oldest first.
        base_prefix: str or None. The `--base-prefix` of the last export: where the server
            finds the models (`base_path`s of models.config); None: the folder's own path.
    """

    models: dict = dataclasses.field(default_factory=dict)
    history: list = dataclasses.field(default_factory=list)
    base_prefix: Optional[str] = None

    def labels(self, model: str) -> dict:
        """Label -> version of `model` (empty when the model is unknown)."""
        return dict(self.models.get(model, {}))

    def move(self, model: str, label: str, version: int, action: str, why: str) -> Optional[Change]:
        """Points `label` of `model` at `version`; the Change, or None when it already does."""
        current = self.models.get(model, {}).get(label)
        if current == version:
            return None
        change = Change(_now(), model, label, current, int(version), action, who(), why)
        self.models.setdefault(model, {})[label] = int(version)
        self.history.append(change)
        return change

    def stable_lineage(self, model: str) -> list[int]:
        """The versions `stable` went through and that no rollback undid, oldest first.

        A promotion (or an export) adds a version; a rollback goes back to the last entry of
        its target and drops what came after it, so rolling back twice walks back two
        promotions instead of toggling between two versions.
        """
        lineage: list[int] = []
        for change in self.history:
            if change.model != model or change.label != STABLE:
                continue
            if change.action == "rollback" and change.to_version in lineage:
                last = len(lineage) - 1 - lineage[::-1].index(change.to_version)
                del lineage[last + 1 :]
            elif change.action == "rollback":  # `--to` a version stable never named
                lineage[-1:] = [change.to_version]
            else:
                lineage.append(change.to_version)
        return lineage

    def rollback_target(self, model: str) -> Optional[int]:
        """The version `tfrec rollback` moves `stable` of `model` to; None when there is none."""
        lineage = self.stable_lineage(model)
        return lineage[-2] if len(lineage) > 1 else None

    def served_versions(self, model: str) -> list[int]:
        """The versions models.config serves for `model`: the labelled ones and the rollback
        target, which stays loaded so that a rollback moves `stable` to an available version
        at once (a server moves a label only to a loaded version)."""
        wanted = set(self.models.get(model, {}).values())
        target = self.rollback_target(model)
        if target is not None:
            wanted.add(target)
        return sorted(wanted)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "base_prefix": self.base_prefix,
            "models": {m: dict(sorted(v.items())) for m, v in sorted(self.models.items())},
            "history": [c.to_json() for c in self.history],
        }


def who() -> str:
    """`user@host` of this process, recorded with each label move."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(value, path: Path, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.DataError(
            f"expected a positive int, received {value!r}", path=path, field=field
        )
    return value


def _text(value, path: Path, field: str) -> str:
    if not isinstance(value, str):
        raise errors.DataError(f"expected a string, received {value!r}", path=path, field=field)
    return value


def _change(raw, path: Path, index: int) -> Change:
    field = f"history[{index}]"
    keys = {"time", "model", "label", "from", "to", "action", "who", "why"}
    if not isinstance(raw, dict) or set(raw) != keys:
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise errors.DataError(
            f"expected the keys {sorted(keys)}, received {found}", path=path, field=field
        )
    if raw["action"] not in ACTIONS or raw["label"] not in LABELS:
        raise errors.DataError(
            f"expected `action` in {list(ACTIONS)} and `label` in {list(LABELS)}, received "
            f"{raw['action']!r} and {raw['label']!r}",
            path=path,
            field=field,
        )
    return Change(
        time=_text(raw["time"], path, f"{field}.time"),
        model=_text(raw["model"], path, f"{field}.model"),
        label=raw["label"],
        from_version=None if raw["from"] is None else _version(raw["from"], path, f"{field}.from"),
        to_version=_version(raw["to"], path, f"{field}.to"),
        action=raw["action"],
        who=_text(raw["who"], path, f"{field}.who"),
        why=_text(raw["why"], path, f"{field}.why"),
    )


def load(export_dir: os.PathLike | str) -> LabelState:
    """The label state of `export_dir` (empty when it has no `labels.json` yet).

    Raises:
        DataError: naming the file and field, when `labels.json` is not a label state.
    """
    path = Path(export_dir) / LABELS_FILE
    if not path.is_file():
        return LabelState()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise errors.DataError(f"expected JSON, received unreadable text: {e}", path=path) from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise errors.DataError(f"expected {FORMAT}, received {found!r}", path=path, field="format")
    models = raw.get("models")
    if not isinstance(models, dict):
        raise errors.DataError(
            f"expected an object, received {models!r}", path=path, field="models"
        )
    state = LabelState(base_prefix=raw.get("base_prefix"))
    if state.base_prefix is not None:
        _text(state.base_prefix, path, "base_prefix")
    for model, labels in models.items():
        if not isinstance(labels, dict) or not set(labels) <= set(LABELS):
            raise errors.DataError(
                f"expected an object of labels {list(LABELS)}, received {labels!r}",
                path=path,
                field=f"models.{model}",
            )
        state.models[model] = {
            k: _version(v, path, f"models.{model}.{k}") for k, v in labels.items()
        }
    history = raw.get("history")
    if not isinstance(history, list):
        raise errors.DataError(f"expected a list, received {history!r}", path=path, field="history")
    state.history = [_change(c, path, i) for i, c in enumerate(history)]
    return state


def save(export_dir: os.PathLike | str, state: LabelState) -> None:
    """Writes `labels.json` atomically (temporary file + rename), readable by all."""
    path = Path(export_dir) / LABELS_FILE
    config_lib.write_text_atomic(path, json.dumps(state.to_json(), indent=2) + "\n", mode=0o644)


def check_version(export_dir: os.PathLike | str, model: str, version: int, label: str) -> int:
    """`version` when `<export_dir>/<model>/<version>` is a complete version, else an error.

    Raises:
        WorkdirError: naming the model, label and version, and the complete versions found.
    """
    folder = Path(export_dir) / model / str(version)
    found = writer.versions(Path(export_dir) / model)
    if version in found:
        return version
    why = "is incomplete (no saved_model.pb)" if folder.is_dir() else "does not exist"
    raise errors.WorkdirError(
        f"label `{label}` of model `{model}` cannot name version {version}: `{folder}` {why}; "
        f"expected a complete version of `{model}`, found {found or 'none'}"
    )


def _configured_labels(export_dir: Path) -> dict:
    """Model -> labels of the models.config an older tfrec wrote, {} when there is none."""
    path = export_dir / "models.config"
    if not path.is_file():
        return {}
    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(path.read_text(encoding="utf-8"), proto)
    except (text_format.ParseError, UnicodeDecodeError):
        return {}  # not ours to judge: the labels are derived instead
    return {c.name: dict(c.version_labels) for c in proto.model_config_list.config}


def adopt(state: LabelState, export_dir: os.PathLike | str) -> list[Change]:
    """Adds the model folders of `export_dir` that the state does not know yet.

    A folder exported before labels were recorded keeps the labels its models.config gives
    (what a server follows today) where they name complete versions; otherwise `canary` is
    the newest version and `stable` the one before, as tfrec derived them.

    Returns:
        list of Change, the labels added.
    """
    export_dir = Path(export_dir)
    configured = _configured_labels(export_dir)
    changes = []
    for child in sorted(export_dir.iterdir()) if export_dir.is_dir() else []:
        found = writer.versions(child) if child.is_dir() else []
        if not found or child.name in state.models:
            continue
        labels = {k: v for k, v in configured.get(child.name, {}).items() if k in LABELS}
        if set(labels) == set(LABELS) and set(labels.values()) <= set(found):
            why = "adopted from models.config"
        else:
            labels = {STABLE: found[-2] if len(found) > 1 else found[-1], CANARY: found[-1]}
            why = "derived: canary the newest version, stable the one before"
        for label in LABELS:
            change = state.move(child.name, label, labels[label], "adopt", why)
            changes.append(change)
    return [c for c in changes if c is not None]


def record_export(state: LabelState, names: Iterable[str], version: int, why: str) -> list[Change]:
    """Labels a new version of `names` `canary`; also `stable` for a model's first version."""
    changes = []
    for name in names:
        changes.append(state.move(name, CANARY, version, "export", why))
        if STABLE not in state.models[name]:
            changes.append(state.move(name, STABLE, version, "export", why))
    return [c for c in changes if c is not None]


def recovered(export_dir: os.PathLike | str) -> tuple[LabelState, bool]:
    """The label state of a locked export folder once what a killed export left is in order.

    Runs `writer.recover`; the versions of a commit it finishes are labelled `canary` like any
    new export; model folders from before labels were recorded are adopted. Call it holding
    `writer.export_lock`.

    Returns:
        (LabelState, bool): the state, and whether it differs from `labels.json` (to be saved
        and rendered).
    """
    done = writer.recover(export_dir)["committed"]
    state = load(export_dir)
    before = len(state.history)
    adopt(state, export_dir)
    by_version: dict[int, list[str]] = {}
    for target in done:  # `<model>/<version>`
        name, _, version = target.rpartition("/")
        by_version.setdefault(int(version), []).append(name)
    for version, names in sorted(by_version.items()):
        record_export(state, names, version, "an export cut short, finished by the next command")
    return state, len(state.history) != before
