"""`tfrec promote` and `tfrec rollback`: move the `stable` label of exported models."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from tfrec import errors
from tfrec.exporting import labels, server_configs, writer


def promote(
    export_dir: os.PathLike | str,
    models: Sequence[str] = (),
    version: Optional[int] = None,
    require_gates: Sequence[os.PathLike | str] = (),
    why: str = "",
) -> list[dict]:
    """Moves `stable` of each model to its `canary` version (or to `version`).

    Args:
        export_dir: path. An export folder (`tfrec export --export-dir`).
        models: sequence of str. The models to promote; empty: every labelled model.
        version: int or None. The version `stable` moves to; None: each model's canary.
        require_gates: sequence of path. Gate verdict files (`tfrec gate infra`); when given,
            every model is promoted only if one of them passed that model and version.
        why: str. Reason recorded in the label history.

    Returns:
        list of dict, one per model: `model`, `label`, `from`, `to`, `moved`.

    Raises:
        ConfigError: an unknown model, or a bad `version`.
        WorkdirError: a target version missing or incomplete, or a verdict that does not pass.
    """

    def target(state: labels.LabelState, model: str) -> int:
        return version if version is not None else state.labels(model)[labels.CANARY]

    if version is not None and (isinstance(version, bool) or version < 1):
        raise errors.ConfigError(f"`--version` must be a positive int, received {version!r}")
    return _move_stable(export_dir, models, target, "promote", require_gates, why)


def rollback(
    export_dir: os.PathLike | str,
    models: Sequence[str] = (),
    to: Optional[int] = None,
    why: str = "",
) -> list[dict]:
    """Moves `stable` of each model back to the version it named before (or to `to`).

    "Before" follows the label history: each rollback undoes one promotion, so two rollbacks
    go back two promotions (`LabelState.stable_lineage`).

    Args:
        export_dir: path. An export folder.
        models: sequence of str. The models to roll back; empty: every labelled model.
        to: int or None. The version `stable` moves to; None: the one before, from history.
        why: str. Reason recorded in the label history.

    Returns:
        list of dict, one per model: `model`, `label`, `from`, `to`, `moved`.

    Raises:
        ConfigError: an unknown model, a bad `to`, or no earlier version in the history.
        WorkdirError: a target version missing or incomplete.
    """

    def target(state: labels.LabelState, model: str) -> int:
        if to is not None:
            return to
        found = state.rollback_target(model)
        if found is None:
            raise errors.ConfigError(
                f"model `{model}`: `stable` (version {state.labels(model)[labels.STABLE]}) has "
                "no earlier version in the label history to roll back to; pass `--to N`"
            )
        return found

    if to is not None and (isinstance(to, bool) or to < 1):
        raise errors.ConfigError(f"`--to` must be a positive int, received {to!r}")
    return _move_stable(export_dir, models, target, "rollback", (), why)


def _move_stable(export_dir, models, target, action: str, require_gates, why: str) -> list[dict]:
    """Moves `stable` of `models` to `target(state, model)` as one step, under the lock.

    Every target is checked before anything is written: one refused model moves none. The
    label state is written first and models.config, rendered from it, second (each a
    temporary file renamed in); version folders are only read.
    """
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise errors.ConfigError(f"`--export-dir` {str(export_dir)!r} is not a directory")
    with writer.export_lock(export_dir):
        state, changed = labels.recovered(export_dir)
        chosen = _models(state, models, export_dir)
        targets = {m: target(state, m) for m in chosen}
        for model, version in targets.items():
            labels.check_version(export_dir, model, version, labels.STABLE)
        if require_gates:
            check_verdicts(require_gates, targets, export_dir)
        note = why or f"tfrec {action}"
        moved = []
        for model, version in targets.items():
            before = state.labels(model)[labels.STABLE]
            change = state.move(model, labels.STABLE, version, action, note)
            moved.append(
                {
                    "model": model,
                    "label": labels.STABLE,
                    "from": before,
                    "to": version,
                    "moved": change is not None,
                }  # fmt: skip
            )
        if changed or any(m["moved"] for m in moved):
            labels.save(export_dir, state)
        # Rendered even when nothing moved: it repairs a models.config left behind by a
        # process killed between writing labels.json and it.
        server_configs.write_models_config(export_dir, state.base_prefix, state)
    return moved


def _models(state: labels.LabelState, models: Sequence[str], export_dir: Path) -> list[str]:
    known = sorted(m for m in state.models if labels.STABLE in state.models[m])
    if not known:
        raise errors.WorkdirError(
            f"`--export-dir` {str(export_dir)!r} holds no labelled model: expected "
            "`<model>/<version>/saved_model.pb` written by `tfrec export`"
        )
    for model in models:
        if model not in known:
            raise errors.ConfigError(
                f"`--model` {model!r} is not a labelled model of {str(export_dir)!r}; "
                f"expected one of {known}"
            )
    return list(dict.fromkeys(models)) or known


def check_verdicts(
    paths: Sequence[os.PathLike | str], targets: dict, export_dir: os.PathLike | str
) -> None:
    """Refuses unless, for each model -> version of `targets`, a verdict passed that version.

    A verdict is the JSON `tfrec gate infra` writes (`tfrec.pipelines.infra_gate`): `gate`,
    `export_dir`, `passed` and `models`, a list of `{model, version, passed, reasons, ...}`.

    Raises:
        WorkdirError: naming the file and the model and version it does not pass.
    """
    found_by_key: dict = {}
    export_dir = Path(export_dir).resolve()
    for path in paths:
        path = Path(path)
        try:
            verdict = json.loads(path.read_text(encoding="utf-8"))
            where = Path(verdict["export_dir"]).resolve()
            for entry in verdict["models"]:
                reasons = list(entry["reasons"]) if not entry["passed"] else []
                if where != export_dir:
                    reasons.append(f"it gated `{where}`, not `{export_dir}`")
                key = (entry["model"], int(entry["version"]))
                found_by_key.setdefault(key, []).append((path, reasons))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise errors.WorkdirError(
                f"`--require-gate` {str(path)!r}: expected a gate verdict (JSON with "
                f"`export_dir` and `models`), could not read it: {e!r}"
            ) from e
    for model, version in targets.items():
        found = found_by_key.get((model, version), [])
        if any(not reasons for _, reasons in found):
            continue
        if not found:
            raise errors.WorkdirError(
                f"model `{model}` version {version}: none of the gate verdicts "
                f"{[str(p) for p in paths]} covers it; run `tfrec gate infra --model {model} "
                f"--version {version}` first"
            )
        path, reasons = found[0]
        raise errors.WorkdirError(
            f"model `{model}` version {version}: gate verdict `{path}` did not pass: "
            + "; ".join(reasons or ["`passed` is false"])
        )
