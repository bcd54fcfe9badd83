"""`tfrec experiment run|report`: variants of a config over seeds, compared in one HTML report.

`run` checks the experiment file (errors name its line), trains and evaluates every variant
and seed in its own process and workdir (`<output>/<variant>/seed-<n>/`, resumed when run
again; finished runs are never retrained), exports each variant's first seed to time it and
show example lists, writes the TensorBoard HParams runs and the report. `report` writes the
report again from what the runs left.

Each run's process is `python -m tfrec.pipelines.experiment <workdir>`: it reads the
resolved config the experiment wrote there, trains (`train.train_all`), evaluates
(`evaluate.evaluate_workdir`, recall@k for k = 1..100) and writes `done.json`, or
`failed.json` with the error.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from tfrec import __version__, errors
from tfrec import config as config_lib
from tfrec.experiments import results as results_lib
from tfrec.experiments import runner, segments
from tfrec.experiments import spec as spec_lib

JOB_CONFIG = "experiment-config.yaml"
REPORT = "report.html"
_KS = "eval.ks=[" + ",".join(str(k) for k in range(1, spec_lib.MAX_K + 1)) + "]"


def default_jobs() -> int:
    """Parallel runs: one per two cores (TensorFlow uses several threads per run)."""
    return max(1, (os.cpu_count() or 1) // 2)


def jobs_of(exp: spec_lib.Experiment) -> list[runner.Job]:
    """One job per distinct run (variants with equal configs share theirs), writing the
    resolved config of each unfinished one into its workdir."""
    out = []
    for variant in exp.variants:
        if exp.owner(variant) != variant:
            continue
        config = exp.variants[variant].config
        for seed in exp.seeds:
            wd = exp.run_dir(variant, seed)
            seeded = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))
            if runner.status(wd) != "done":
                config_lib.save(seeded, wd / JOB_CONFIG)
            elif (wd / JOB_CONFIG).is_file():
                _check_unchanged(wd, seeded)
            out.append(
                runner.Job(
                    f"{variant}/seed-{seed}",
                    wd,
                    runner.python_command(__name__, str(wd)),
                    epochs=config.train.epochs,
                )
            )
    return out


def _check_unchanged(workdir: Path, config: config_lib.Config) -> None:
    """A finished run is kept only while the experiment still asks for the same config."""
    done = config_lib.load(str(workdir / JOB_CONFIG))
    diff = spec_lib.config_diff(config, done)
    if diff:
        key, (old, new) = next(iter(diff.items()))
        raise errors.ConfigError(
            f"`{workdir}` holds a finished run of another config: `{key}` was {old!r}, the "
            f"experiment now says {new!r}; delete that folder to train it again, or give "
            "another --output"
        )


def run(
    path: str | os.PathLike,
    output: Optional[str | os.PathLike] = None,
    jobs: Optional[int] = None,
    progress: bool = True,
) -> Path:
    """Runs (or resumes) the experiment and writes its report; returns the report's path."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise errors.ConfigError(f"`--jobs` must be an int >= 1, received {jobs!r}")
    # Every mistake of the file is raised here, before anything trains.
    exp = spec_lib.load(Path(path), None if output is None else Path(output))
    exp.output.mkdir(parents=True, exist_ok=True)
    shutil.copy2(exp.path, exp.output / "experiment.yaml")
    started = time.perf_counter()
    states = runner.run_jobs(jobs_of(exp), max_parallel=jobs or default_jobs(), progress=progress)
    for label, state in states.items():
        if state != "done":
            print(f"run {label}: {state} (see {exp.output / label / runner.LOG})")
    gathered = results_lib.gather(exp)
    write_segments(exp, gathered)
    for variant in gathered.done():
        measure_serving(exp, variant)
    write_hparams(results_lib.gather(exp))
    print(f"experiment {exp.name}: {time.perf_counter() - started:.0f}s")
    return report(path, output)


def report(path: str | os.PathLike, output: Optional[str | os.PathLike] = None) -> Path:
    """Writes `<output>/report.html` from the runs as they are; returns its path."""
    from tfrec.experiments import report as report_lib

    exp = spec_lib.load(Path(path), None if output is None else Path(output))
    gathered = results_lib.gather(exp)
    target = exp.output / REPORT
    config_lib.write_text_atomic(target, report_lib.render(gathered))
    summary = results_lib.summarize(gathered)
    print(summary["verdict"])
    print(f"report: {target}")
    return target


def _first_done(exp: spec_lib.Experiment, gathered: results_lib.Results, variant: str):
    return next(r for r in gathered.variant_runs(variant) if r.status == "done")


def write_segments(exp: spec_lib.Experiment, gathered: results_lib.Results) -> None:
    """`<output>/segments.parquet`: the segment labels of the reference's test queries."""
    from tfrec import artifact as artifact_lib

    target = exp.output / results_lib.SEGMENTS
    if target.is_file() or exp.reference not in gathered.done():
        return
    art = artifact_lib.Artifact(_first_done(exp, gathered, exp.reference).workdir)
    prepared = art.prepared()
    test = prepared.test
    frame = segments.labels(
        test.user_id.tolist(),
        test.timestamp.tolist(),
        test.history_item_ids,
        test.relevant,
        art.catalog(),
        prepared.spec.users,
    )
    tmp = target.with_name(f".{target.name}.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(target)


def _example_users(exp: spec_lib.Experiment, gathered: results_lib.Results) -> list[dict]:
    """The first test queries of distinct users with a history: user, recent events, time."""
    from tfrec import artifact as artifact_lib

    art = artifact_lib.Artifact(_first_done(exp, gathered, exp.reference).workdir)
    test = art.prepared().test
    chosen, seen = [], set()
    for row in range(len(test)):
        user = str(test.user_id[row])
        recent = [
            (str(i), str(e))
            for i, e in zip(test.history_item_ids[row], test.history_event_types[row], strict=True)
            if i
        ]
        if user in seen or not recent:
            continue
        seen.add(user)
        chosen.append({"user_id": user, "recent": recent, "now": int(test.timestamp[row])})
        if len(chosen) == exp.examples_users:
            break
    return chosen


# Latency requests per variant: untimed ones first (graph warm-up), then the timed ones.
SERVING_WARMUP = 20
SERVING_TIMED = 200


def measure_serving(exp: spec_lib.Experiment, variant: str) -> None:
    """Exports the variant's first seed, serves it, times its signature, lists examples.

    The export runs behind `tfrec serve` in its own process (batching off); the example lists
    and the latency come from gRPC requests, timed by the serving bench's load generator with
    one client. Writes `serving.json`; skipped when it is there. A failure is written into it,
    never raised, so one variant's export cannot stop the report.
    """
    from tfrec import artifact as artifact_lib
    from tfrec.compression import sizes
    from tfrec.pipelines import export as export_lib
    from tfrec.ranking import requests
    from tfrec.serving import Client, loadtest, server_process

    target = exp.output / variant / results_lib.SERVING
    if target.is_file():
        return
    gathered = results_lib.gather(exp)
    spec = exp.variants[variant]
    run = _first_done(exp, gathered, variant)
    signature = "recommend" if spec.ranker else "retrieve"
    model = "tfrec"
    try:
        folder = exp.output / exp.owner(variant) / "export"
        model_dir = folder / model / "1"
        if not (model_dir / "saved_model.pb").is_file():
            export_lib.export(run.workdir, folder, version=1, with_text=False)
        users = _example_users(exp, gathered)
        catalog = artifact_lib.Artifact(run.workdir).catalog().set_index("item_id")["title"]
        request = requests.build(
            users[0]["user_id"] if users else "unknown",
            users[0]["recent"] if users else (),
            now=users[0]["now"] if users else 0,
            k=spec.config.recommend.k,
        )
        log = exp.output / variant / "server.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with server_process.ServerProcess(folder, False, [model], log) as server:
            with Client(server.grpc_target) as client:
                examples = []
                for user in users:
                    inputs = requests.build(
                        user["user_id"], user["recent"], now=user["now"], k=exp.examples_k
                    )
                    out = client.predict(model, inputs, signature_name=signature)
                    examples.append(_example(user, {k: v[0] for k, v in out.items()}, catalog))
                for _ in range(SERVING_WARMUP):
                    client.predict(model, request, signature_name=signature)
            timed = loadtest.run(
                server.grpc_target,
                lambda _: {"model": model, "inputs": request, "signature_name": signature},
                concurrency=1,
                num_requests=SERVING_TIMED,
            )
        if timed.failures:
            raise errors.TfrecError(
                f"{timed.failures} of {timed.requests} timed requests failed: {timed.errors[0]}"
            )
        info: dict[str, Any] = {
            "run": str(run.workdir),
            "export": str(model_dir),
            "size_bytes": sizes.raw_bytes(model_dir),
            "latency": {
                "signature": signature,
                "protocol": "grpc",
                "p50_ms": timed.p50_ms,
                "p99_ms": timed.p99_ms,
                "mean_ms": float(sum(timed.latencies_ms) / len(timed.latencies_ms)),
                "calls": SERVING_TIMED,
                "warmup": SERVING_WARMUP,
                "batch_size": 1,
            },
            "examples": examples,
        }
    except Exception as e:  # noqa: BLE001 - recorded in the report instead
        info = {"error": f"{type(e).__name__}: {e}", "details": traceback.format_exc()}
        print(f"variant {variant}: export, serving or timing failed: {info['error']}")
    runner.write_json(target, info)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _example(user: dict, out: dict, titles) -> dict:
    """One example list: items with titles, each with its explanation as one line."""

    def title(item: str) -> str:
        return str(titles.get(item, item))

    items = []
    for slot, item in enumerate(out["item_ids"]):
        item = _text(item)
        if not item:
            continue
        why = []
        if "explanation_item_ids" in out:
            for j, position in enumerate(out["explanation_positions"][slot]):
                if position >= 0:
                    source = _text(out["explanation_item_ids"][slot, j])
                    event = _text(out["explanation_event_types"][slot, j])
                    why.append(f"{event} of {title(source)}")
        why = why[:2]  # the two strongest (the graph lists them best first): read at a glance
        items.append(
            {
                "item_id": item,
                "title": title(item),
                "explanation": ("because of your recent " + "; ".join(why)) if why else "",
            }
        )
    recent = [{"item_id": i, "title": title(i), "event_type": e} for i, e in user["recent"]]
    return {"user_id": user["user_id"], "recent": recent, "items": items}


def write_hparams(gathered: results_lib.Results) -> None:
    """One TensorBoard HParams session per finished run, grouped by variant:
    `tensorboard --logdir <output>/tensorboard`."""
    import numpy as np
    import tensorflow as tf

    from tfrec.training import tensorboard

    exp = gathered.experiment
    root = exp.output / "tensorboard"
    for variant in gathered.done():
        spec = exp.variants[variant]
        for run in gathered.variant_runs(variant):
            # `write_hparams` names the session group after the parent folder: the variant.
            tb_dir = root / variant / f"seed-{run.seed}"
            shutil.rmtree(tb_dir, ignore_errors=True)
            config = dataclasses.replace(spec.config, name=variant)
            config = dataclasses.replace(
                config, train=dataclasses.replace(config.train, seed=run.seed)
            )
            summary = dict(run.info.get("train", {}))
            summary.setdefault("epochs_run", 1)
            tensorboard.write_hparams(tb_dir, config, summary)
            with tf.summary.create_file_writer(str(tb_dir / "hparams")).as_default():
                for metric in exp.metrics:
                    column = f"{spec.model}/{metric}"
                    value = float(np.nanmean(run.per_query[column]))  # type: ignore[index]
                    tf.summary.scalar(f"test/{metric}", value, step=1)


def code_version() -> str:
    """tfrec's version, and the git commit of its source when it runs from a checkout."""
    source = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__} ({commit}{' + local changes' if dirty else ''})"


def run_one(workdir: Path) -> int:
    """The process of one run: train, evaluate, write `done.json` (or `failed.json`)."""
    from tfrec.pipelines import evaluate as evaluate_lib
    from tfrec.pipelines import train as train_lib

    try:
        config = config_lib.load(str(workdir / JOB_CONFIG))
        start = time.perf_counter()
        summaries = train_lib.train_all(config, workdir)
        trained = time.perf_counter()
        evaluate_lib.evaluate_workdir(workdir, overrides=[_KS])
        finished = time.perf_counter()
    except Exception as e:  # noqa: BLE001 - the experiment reports it and goes on
        runner.mark_failed(workdir, f"{type(e).__name__}: {e}", traceback.format_exc())
        traceback.print_exc()
        return 1
    towers = summaries["tfrec"]
    runner.write_json(
        workdir / runner.DONE,
        {
            "train_seconds": trained - start,
            "evaluate_seconds": finished - trained,
            "code_version": code_version(),
            "train": {
                k: towers[k]
                for k in ("best_validation_recall@50", "best_epoch", "epochs_run")
                if isinstance(towers.get(k), (int, float))
            },
        },
    )
    return 0


if __name__ == "__main__":
    from tfrec import console

    console.quiet(loads_models=True)  # the run's log keeps tfrec's lines, not library noise
    sys.exit(run_one(Path(sys.argv[1])))
