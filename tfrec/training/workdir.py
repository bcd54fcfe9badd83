"""A run's workdir: resolved config first, then spec, checkpoints, TensorBoard and metrics."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import yaml

from tfrec import config as config_lib
from tfrec import errors

# Fields that may change between a run and its resumption: they do not change the model.
_RESUMABLE = (
    "train.epochs",
    "train.early_stopping_patience",
    "train.steps_per_epoch",
    "train.histogram_freq",
    "eval",
    "compression",
    "bench",  # what `tfrec bench serving` measures, not the model
    "update",  # how `tfrec update` warm-starts the model later, not the model
    "index",  # how an export searches the item vectors
    "gates",  # thresholds of the checks before shipping
    "name",
)
# Fields only the ranker reads: free to change while the workdir holds no trained ranker.
_RANKER_ONLY = ("ranking", "recommend")


class Workdir:
    """Paths of one run. Layout: config.yaml, spec/, checkpoints/, best/, tb/, metrics.json."""

    def __init__(self, root: os.PathLike | str) -> None:
        self.root = Path(root)

    config = property(lambda self: self.root / "config.yaml")
    spec = property(lambda self: self.root / "spec")
    checkpoints = property(lambda self: self.root / "checkpoints")
    best = property(lambda self: self.root / "best")
    tb = property(lambda self: self.root / "tb")
    metrics = property(lambda self: self.root / "metrics.json")
    history = property(lambda self: self.root / "history.json")
    repeat_prior = property(lambda self: self.root / "repeat_prior.json")

    def baseline(self, name: str) -> Workdir:
        return Workdir(self.root / "baselines" / name)

    def claim(self, config: config_lib.Config) -> None:
        """Writes the resolved config, or checks it matches the one already here.

        A workdir that holds another model's checkpoint is an error before any training
        starts: restoring mismatched weights fails late and obscurely otherwise.
        """
        if self.config.is_file():
            previous = _resolved(self.config)
            # The ranker's settings bind only once a ranker is trained (`<root>/ranking`).
            free = () if (self.root / "ranking" / "checkpoints").exists() else _RANKER_ONLY
            diff = _first_difference(previous, config_lib.to_dict(config), free=free)
            if diff is not None and self.checkpoints.exists():
                key, old, new = diff
                raise errors.WorkdirError(
                    f"workdir `{self.root}` holds a checkpoint of another model: `{key}` was "
                    f"{old!r} there, the config now says {new!r}. Use a new --workdir, or "
                    "delete this one to start over."
                )
        config_lib.save(config, self.config)

    def load_config(self) -> config_lib.Config:
        if not self.config.is_file():
            raise errors.WorkdirError(
                f"workdir `{self.root}` has no config.yaml: run `tfrec train --workdir "
                f"{self.root}` first"
            )
        return config_lib.load(str(self.config))


def _resolved(path: Path) -> dict:
    """A saved config with today's defaults filled in, as a dict.

    A setting added since the run was saved takes its default, which is how that run behaved,
    so it is no difference. A file the current code cannot load is compared as written.
    """
    try:
        return config_lib.to_dict(config_lib.load(str(path)))
    except errors.ConfigError:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _first_difference(
    old: dict, new: dict, prefix: str = "", free: tuple[str, ...] = ()
) -> Optional[tuple[str, Any, Any]]:
    for key in sorted(set(old) | set(new)):
        dotted = prefix + key
        if any(dotted == r or dotted.startswith(r + ".") for r in _RESUMABLE + free):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _first_difference(a, b, dotted + ".", free)
            if found:
                return found
        elif a != b:
            return dotted, a, b
    return None
