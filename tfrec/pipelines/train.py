"""`tfrec train`: the retrieval model, its ranker and its trained baseline, on one dataset."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec.data import prepared as prepared_lib
from tfrec.ranking import training as ranking_training
from tfrec.ranking import two_stage
from tfrec.training import distribution, trainer, workers
from tfrec.training import workdir as workdir_lib


def train_all(
    config: config_lib.Config,
    workdir: os.PathLike | str,
    baselines: bool = True,
    prepared: Optional[prepared_lib.PreparedData] = None,
) -> dict[str, Any]:
    """Trains tfrec's retrieval model, its ranker, then the id-only two-tower baseline.

    All read the same prepared data, so their numbers compare like for like. The ranker
    (`<workdir>/ranking`) learns from the best retrieval model's own candidates, so it is
    trained after it; the baseline is trained when `eval.baselines` names `id_two_tower`.
    Last, the run is published as a self-contained model artifact (`<workdir>/artifact`,
    `tfrec.artifact`), which every later step reads.

    Under `train.distribution: multi_worker` (`TF_CONFIG` set), every worker runs this with
    the same arguments: the towers train on all of them, each reading its share of every
    batch; only the chief writes `workdir`, then trains the ranker and publishes the artifact
    alone, and the others return after the towers.

    Args:
        config: Config. The resolved run config.
        workdir: str or path-like. The run directory.
        baselines: bool. Train the baselines `eval.baselines` names. Defaults to True.
        prepared: PreparedData or None. Reused when given; built from `config` otherwise.

    Returns:
        dict. Model name -> training summary, plus `ranker` and `artifact` (its path).
    """
    # First: a multi-worker strategy must exist before TensorFlow runs any op.
    strategy = distribution.make_strategy(config.train.distribution)
    chief = workers.is_chief(strategy)
    wd = workdir_lib.Workdir(workdir)
    if chief:
        wd.claim(config)  # before the data is read: a wrong workdir fails fast
    if prepared is None:
        prepared = prepared_lib.prepare(config)
    print(json.dumps({"split": prepared.split.report()}, indent=2, default=str))
    # The two towers train first, on every worker of a multi-worker run; the rest runs once.
    summaries: dict[str, Any] = {"tfrec": trainer.train(config, wd.root, prepared, kind="tfrec")}
    if baselines and "id_two_tower" in config.eval.baselines:
        summaries["id_two_tower"] = trainer.train(
            config, wd.baseline("id_two_tower").root, prepared, kind="id_two_tower"
        )
    if not chief:
        print("towers trained; the chief alone writes the run, trains the ranker, publishes")
        return summaries
    retrieval = trainer.load_trained(config, wd.root, prepared)
    ranker = ranking_training.train_ranker(config, wd.root, prepared, retrieval)
    if ranker["epochs_run"] or not ranking_training.blend_path(wd.root).is_file():
        trained = ranking_training.load_ranker(config, wd.root, prepared, retrieval)
        ranker["blend"] = two_stage.tune_blend(config, wd.root, prepared, retrieval, trained)
    for name, s in summaries.items():
        print(
            f"{name}: best val recall@50 {s['best_validation_recall@50']:.4f} "
            f"(epoch {s['best_epoch']}), {s['examples_per_second'] or 0:.0f} examples/s, "
            f"{s['seconds']:.0f}s"
        )
    print(
        f"ranker: best validation score {ranker.get('best_validation_score', float('nan')):.4f} "
        f"(epoch {ranker.get('best_epoch')}), {ranker['epochs_run']} epochs run"
    )
    summaries["ranker"] = ranker
    trained_now = [s.get("epochs_run") for s in summaries.values()] + [ranker["epochs_run"]]
    published = wd.root / artifact_lib.DIRNAME
    # A resumed run that trained nothing keeps its artifact, and the metrics written into it.
    if any(trained_now) or "blend" in ranker or not published.is_dir():
        published = artifact_lib.publish(wd.root, config, prepared)
    summaries["artifact"] = str(published)
    print(f"model artifact: {published}")
    return summaries
