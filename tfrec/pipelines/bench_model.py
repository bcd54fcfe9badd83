"""The model the serving bench measures: its resolved config, trained briefly or given."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

from tfrec import config as config_lib
from tfrec import errors

# Without --workdir the bench trains the model `make demo` trains (embedding dim 64, attention
# over 20 events, BERT text tower): targets measured on the test-sized tiny model mean little.
DEFAULT_CONFIG = "configs/demo.yaml"
# Latency does not depend on how well the model learned: one epoch per stage, no baselines
# and no histograms keep training under a minute on 2 CPU cores. The ranker is still trained,
# since `recommend` needs it.
TRAIN_OVERRIDES = (
    "train.epochs=1",
    "ranking.epochs=1",
    "eval.baselines=[]",
    "train.histogram_freq=0",
)


# What `--set` may change: how the bench measures, and the item index the exports build
# (built at export time from the trained vectors, so it never changes the trained model).
SETTABLE = ("bench", "index")


def check_overrides(overrides: Sequence[str]) -> None:
    """Refuses `--set` keys outside SETTABLE: the model is fixed by --config or --workdir."""
    for text in overrides:
        key, _ = config_lib.parse_override(text)
        if not any(key == s or key.startswith(s + ".") for s in SETTABLE):
            raise errors.ConfigError(
                "`--set` of `tfrec bench serving` takes `bench.*` and `index.*` keys only (the "
                f"model is set by `--config` or `--workdir`), received {text!r}"
            )


def bench_config(config: Optional[str] = None, overrides: Sequence[str] = ()) -> config_lib.Config:
    """`config` (default DEFAULT_CONFIG) with TRAIN_OVERRIDES, then the `bench.*` overrides.

    Args:
        config: str or None. YAML config file of the model the bench trains.
        overrides: sequence of str. `bench.KEY=VALUE` settings of the measurement.

    Returns:
        The resolved Config: what the bench trains and how it measures.
    """
    check_overrides(overrides)
    # The default is found beside the package, so the bench runs from any folder.
    path = Path(config) if config else Path(__file__).resolve().parents[2] / DEFAULT_CONFIG
    if not path.is_file():
        raise errors.ConfigError(
            f"`--config` must be a YAML config file (the model the bench trains), "
            f"received {str(config or path)!r}"
        )
    return config_lib.load(str(path), [*TRAIN_OVERRIDES, *overrides])


def workdir_config(workdir: os.PathLike | str, overrides: Sequence[str] = ()) -> config_lib.Config:
    """The config a trained run was trained with, then the `bench.*` overrides.

    Args:
        workdir: str or path-like. A trained run (or its artifact folder): holds config.yaml.
        overrides: sequence of str. `bench.KEY=VALUE` settings of the measurement.

    Returns:
        The resolved Config.
    """
    check_overrides(overrides)
    path = Path(workdir, "config.yaml")
    if not path.is_file():
        raise errors.WorkdirError(
            f"`--workdir` must be a trained run (with config.yaml), received {str(workdir)!r}"
        )
    return config_lib.with_overrides(config_lib.load(str(path)), overrides, SETTABLE)


def _model_part(config: config_lib.Config) -> config_lib.Config:
    # The bench and index settings say how to measure and serve, not what was trained.
    return dataclasses.replace(
        config, bench=config_lib.BenchConfig(), index=config_lib.IndexConfig()
    )


def train_model(
    workdir: os.PathLike | str, config: config_lib.Config, progress: Callable[[str], None]
) -> Path:
    """`config` trained (retrieval + ranker) into `workdir`, or reused if trained there.

    Args:
        workdir: str or path-like. Where to train (or what to reuse).
        config: Config. What to train; its `bench` section may differ from the stored one.
        progress: callable. Receives one line per step.

    Returns:
        The workdir's path.

    Raises:
        WorkdirError: `workdir` holds a run of another config; silently measuring it would
            report the wrong model.
    """
    from tfrec import artifact as artifact_lib
    from tfrec.pipelines import train as train_run
    from tfrec.ranking import training as ranking_training
    from tfrec.training import workdir as workdir_lib

    wd = workdir_lib.Workdir(workdir)
    if wd.config.is_file() and _model_part(wd.load_config()) != _model_part(config):
        raise errors.WorkdirError(
            f"`{wd.root}` holds a run of another config than `{config.name}` with "
            f"{list(TRAIN_OVERRIDES)}: delete it to train that config there, or pass it as "
            "`--workdir` to measure it as it is"
        )
    if ranking_training.has_ranker(wd.root) and (wd.root / artifact_lib.DIRNAME).is_dir():
        progress(f"reusing the trained `{config.name}` model in {wd.root}")
        return wd.root
    progress(f"no --workdir: training `{config.name}` ({' '.join(TRAIN_OVERRIDES)}) into {wd.root}")
    train_run.train_all(config, wd.root, baselines=False)
    return wd.root
